"""docker-compose.yml's Hivewire services as local processes, since CI has no container engine.

Each service built from the Hivewire image runs its `command:` exactly as written (`python` is
this interpreter), dependencies first, in a directory laid out like the image (only what the
Dockerfile COPYs, at its WORKDIR), with the image's ENV and its compose `environment:` mapped onto
loopback: bind-mounted files become their sources under the project directory, compose
hostnames become the 127.0.0.1 address of what runs in their place (a
redis-server, an OTLP collector for jaeger, the services started before; a later one is not up
yet, so it refuses), listen addresses become port 0 and metrics ports any free port, read back
from HIVEWIRE_ADDR_FILE, and paths under WORKDIR point into the laid-out directory. A service
counts as started once its own compose healthcheck passes, as `condition: service_healthy` waits.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hivewire.core.addr_file import METRICS, read_addr_file
from hivewire.core.metrics_server import ANY_PORT
from tests.compose_files import Image
from tests.waiting import eventually

READY_WITHIN = 60.0
STOP_WITHIN = 30.0  # the compose file's stop_grace_period
_HOST_PORT = re.compile(r"\b([a-z][a-z0-9-]*):(\d+)\b")
_LOCAL = re.compile(r"\b127\.0\.0\.1:(\d+)\b")


def wait_for(condition: Callable[[], Any], within: float, message: str) -> Any:
    """`eventually` from synchronous code (module fixtures)."""
    return asyncio.run(eventually(condition, within=within, interval=0.05, message=message))


def _python(argv: list[str]) -> list[str]:
    return [sys.executable, *argv[1:]] if argv[0] == "python" else argv


def _port(addr: str) -> int:
    return int(addr.rsplit(":", 1)[1])


@dataclass
class Service:
    """One compose service running as a local process."""

    name: str
    spec: dict[str, Any]
    process: subprocess.Popen[bytes]
    log: Path
    addr_file: Path
    addr: str = ""  # its gRPC address (empty for an agent)
    metrics: str = ""  # its /metrics address

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def local_addrs(self) -> dict[int, str]:
        """In-container ports (what its healthcheck dials on 127.0.0.1) -> real addresses."""
        env = {k: str(v) for k, v in (self.spec.get("environment") or {}).items()}
        out = {}
        for key, value in env.items():
            if key.endswith("_LISTEN") and self.addr:
                out[_port(value)] = self.addr
            elif key.endswith("_METRICS_PORT") and self.metrics:
                out[int(value)] = self.metrics
        return out


@dataclass
class ComposeStack:
    """Start with `start(name)` in hivewire_services() order; `stop()` in reverse."""

    compose: dict[str, Any]
    image: Image
    workdir: Path  # the image's WORKDIR, laid out on this machine
    image_root: Path  # the image's /
    run_dir: Path
    dialable: dict[str, str]  # compose hostname -> 127.0.0.1:port of what stands in for it
    refused: str  # where a not yet started service's name points
    project: Path  # the directory holding docker-compose.yml's bind mount sources (./secrets)
    services: dict[str, Service] = field(default_factory=dict)

    def environment(self, name: str) -> dict[str, str]:
        """The process environment: PATH, the image's ENV, the compose env mapped to loopback."""
        env = {"PATH": os.environ["PATH"], **self.image.env}
        spec = self.compose["services"][name]
        mounts = dict(
            reversed(v.split(":")[:2]) for v in spec.get("volumes") or [] if v.startswith("./")
        )
        for key, raw in (spec.get("environment") or {}).items():
            host = mounts.get(str(raw))  # a bind-mounted file: where it is on this machine
            env[key] = str(self.project / host) if host else self._local_value(key, str(raw))
        env["HIVEWIRE_ADDR_FILE"] = str(self.run_dir / f"{name}.addr")
        return env

    def _local_value(self, key: str, value: str) -> str:
        workdir = str(self.image.workdir)
        if key.endswith("_LISTEN"):
            return "127.0.0.1:0"
        if key.endswith("_METRICS_PORT"):
            return str(ANY_PORT)
        if key == "HIVEWIRE_METRICS_HOST":
            return "127.0.0.1"
        if value == workdir or value.startswith(workdir + "/"):
            return str(self.image_root / value.lstrip("/"))

        def dial(match: re.Match[str]) -> str:
            host = match[1]
            if host not in self.compose["services"]:
                return match[0]
            return self.dialable.get(host, self.refused)

        return _HOST_PORT.sub(dial, value)

    def check_imports_from_image(self, name: str) -> None:
        """The packages `name` runs with `python -m` come from the laid-out image, not from this
        checkout's editable install (which Python would fall back to if the image lacked them)."""
        spec = self.compose["services"][name]
        argvs = [spec["command"], spec["healthcheck"]["test"][1:]]
        packages = {argv[2].split(".")[0] for argv in argvs if argv[:2] == ["python", "-m"]}
        for package in sorted(packages):
            out = subprocess.run(
                _python(["python", "-c", f"import {package}; print({package}.__file__)"]),
                cwd=self.workdir, env=self.environment(name),
                capture_output=True, text=True, timeout=60, check=False,
            )  # fmt: skip
            origin = out.stdout.strip()
            assert origin.startswith(str(self.workdir) + os.sep), (
                name,
                package,
                origin,
                out.stderr,
            )

    def start(self, name: str) -> Service:
        """Start `name` and wait until its compose healthcheck passes."""
        spec = self.compose["services"][name]
        for dep in spec.get("depends_on") or {}:
            assert dep in self.dialable, f"{name} starts before its dependency {dep}"
        self.check_imports_from_image(name)
        env = self.environment(name)
        log = self.run_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                _python(list(spec["command"])), cwd=self.workdir, env=env,
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        service = Service(name, spec, process, log, Path(env["HIVEWIRE_ADDR_FILE"]))
        self.services[name] = service

        def bound() -> bool:
            if process.poll() is not None:
                raise RuntimeError(f"{name} exited {process.returncode}:\n{service.output()}")
            service.metrics = read_addr_file(service.addr_file, METRICS) or ""
            service.addr = read_addr_file(service.addr_file) or ""
            return bool(service.metrics or service.addr)

        wait_for(bound, READY_WITHIN, f"{name} writes {service.addr_file}")
        wait_for(lambda: self.healthcheck(name).returncode == 0, READY_WITHIN, f"{name} healthy")
        if service.addr:
            self.dialable[name] = service.addr
        return service

    def healthcheck_argv(self, name: str) -> list[str]:
        """The service's compose healthcheck `test`, its 127.0.0.1 ports mapped to the real ones."""
        kind, *argv = self.compose["services"][name]["healthcheck"]["test"]
        assert kind == "CMD", kind
        local = self.services[name].local_addrs()

        def real(match: re.Match[str]) -> str:
            port = int(match[1])
            assert port in local, f"{name}'s healthcheck dials {match[0]}, where it listens not"
            return local[port]

        return _python([_LOCAL.sub(real, arg) for arg in argv])

    def healthcheck(self, name: str) -> subprocess.CompletedProcess[str]:
        """Run the healthcheck as the container would: in WORKDIR with the service's environment."""
        return subprocess.run(
            self.healthcheck_argv(name), cwd=self.workdir, env=self.environment(name),
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip

    def logs(self) -> str:
        return "\n".join(f"--- {s.name}\n{s.output()}" for s in self.services.values())

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            if service.process.poll() is None:
                service.process.send_signal(signal.SIGTERM)
            try:
                service.process.wait(STOP_WITHIN)
            except subprocess.TimeoutExpired:
                service.process.kill()
                service.process.wait(10)
