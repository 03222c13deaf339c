"""docker-compose.yml run for real, without a container engine: its Hivewire services as local
processes in a directory laid out like the image (tests/e2e/compose_stack.py), then the
`hivewire` commands README.md's Docker Compose section tells a user to run against it."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from collections.abc import Iterator

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.cli.local_tls import LocalTls
from hivewire.cli.readiness import wait_agents_online
from hivewire.core.tls import PLAINTEXT, TlsConfig, sync_channel
from hivewire.v1 import (
    agent_pb2,
    coordinator_pb2,
    coordinator_pb2_grpc,
    gateway_pb2_grpc,
    registry_pb2,
    registry_pb2_grpc,
)
from tests.compose_files import (
    ROOT,
    hivewire_services,
    lay_out_image,
    load_compose,
    parse_dockerfile,
    readme_compose_commands,
)
from tests.e2e.compose_stack import ComposeStack
from tests.e2e.otel_collector import Collector
from tests.up import refusing_addr

pytestmark = pytest.mark.e2e

COMMAND_TIMEOUT = 60.0
README = ROOT / "README.md"
# What the README's compose section must keep telling users to run (and this test runs).
MUST_RUN = (["commands"], ["run", "analyze-text"], ["submit", "echo"])


@pytest.fixture(scope="module")
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.stop()


@pytest.fixture(scope="module")
def compose_stack(
    tmp_path_factory: pytest.TempPathFactory, collector: Collector
) -> Iterator[ComposeStack]:
    compose = load_compose()
    image = parse_dockerfile((ROOT / "Dockerfile").read_text())
    image_root = tmp_path_factory.mktemp("image")
    workdir = lay_out_image(ROOT, image, image_root)
    redis = EmbeddedRedis(0, tmp_path_factory.mktemp("redis"), appendonly=False)
    redis.start()
    jaeger = collector.endpoint.removeprefix("http://")
    # The README's one certificate command, run where docker-compose.yml is, as a user does.
    project = tmp_path_factory.mktemp("project")
    readme = readme_compose_commands(README.read_text())
    [init] = [a for a in readme if a[1:3] == ["secrets", "init"]]
    made = subprocess.run(
        [sys.executable, "-m", "hivewire.cli", *init[1:]], cwd=project, env=_user_env(),
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
    )  # fmt: skip
    assert made.returncode == 0, made
    with refusing_addr() as refused:
        stack = ComposeStack(
            compose, image, workdir, image_root, tmp_path_factory.mktemp("run"),
            {"redis": f"127.0.0.1:{redis.port}", "jaeger": jaeger},
            refused, project,
        )  # fmt: skip
        try:
            for name in hivewire_services(compose):
                stack.start(name)
            agents = {_agent_name(stack, name) for name in stack.services}
            client_tls = LocalTls(project / "secrets").client()
            gateway = stack.dialable["gateway"]
            admin = (project / "secrets" / "admin.token").read_text().strip()
            online = wait_agents_online(gateway, agents - {""}, 60.0, client_tls, admin)
            asyncio.run(online)
            yield stack
        finally:
            stack.stop()
            redis.stop()


def _agent_name(stack: ComposeStack, service: str) -> str:
    argv = list(stack.compose["services"][service]["command"])
    return argv[argv.index("--name") + 1] if "--name" in argv else ""


def _user_env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"]}


def hivewire(stack: ComposeStack, args: list[str]) -> subprocess.CompletedProcess[str]:
    """A `hivewire` command as a user runs it on the host, in the compose project's directory
    (where `hivewire tls init` left .hivewire/client.env), where the gateway's published port is
    the CLI's default address (tests/unit/test_compose.py checks it): here, where it listens."""
    env = {**_user_env(), "HIVEWIRE_GATEWAY_ADDR": stack.dialable["gateway"]}
    try:
        return subprocess.run(
            [sys.executable, "-m", "hivewire.cli", *args], cwd=stack.project, env=env,
            capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        pytest.fail(f"hivewire {args} still running after {COMMAND_TIMEOUT}s\n{stack.logs()}")


def test_the_readme_commands_succeed_against_the_compose_stack(
    compose_stack: ComposeStack, collector: Collector
) -> None:
    commands = [argv[1:] for argv in readme_compose_commands((ROOT / "README.md").read_text())]
    for must in MUST_RUN:
        assert any(args[: len(must)] == must for args in commands), f"README lacks {must}"
    outputs = {}
    for args in commands:
        out = hivewire(compose_stack, args)
        assert out.returncode == 0, (args, out.stdout, out.stderr, compose_stack.logs())
        if "--wait" in args:
            assert "SUCCEEDED" in out.stdout, (args, out.stdout)
        outputs[" ".join(args[:2])] = out
    listed = outputs["commands"].stdout
    assert "analyze-text:" in listed and "diamond:" in listed, listed
    # The echo task's trace reached "jaeger" from every process on its path.
    [trace_id] = re.findall(r"trace_id ([0-9a-f]{32})", outputs["submit echo"].stderr)
    path = {"hivewire-gateway", "hivewire-coordinator", "hivewire-agent"}
    asyncio.run(
        collector.wait_for(
            lambda spans: {s.service for s in spans if s.trace_id == trace_id} >= path
        )
    )


def test_every_container_healthcheck_passes_and_fails_when_down(
    compose_stack: ComposeStack,
) -> None:
    for name in compose_stack.services:
        out = compose_stack.healthcheck(name)
        assert out.returncode == 0, (name, out.stdout, out.stderr)
    # The probe of a stopped agent fails (what restarts an unhealthy container).
    agent = compose_stack.services["agent-2"]
    argv = compose_stack.healthcheck_argv("agent-2")
    agent.process.terminate()
    agent.process.wait(30)
    down = subprocess.run(argv, cwd=compose_stack.workdir, capture_output=True, check=False)
    assert down.returncode == 1, down


def test_the_stack_refuses_callers_without_a_client_certificate(
    compose_stack: ComposeStack,
) -> None:
    gateway = compose_stack.dialable["gateway"]
    secrets = compose_stack.project / "secrets"
    # Plaintext, and TLS that trusts the CA but presents no certificate: both refused.
    for tls in (PLAINTEXT, TlsConfig(ca=str(secrets / "ca.pem"))):
        healthy, seen = probe_with(gateway, tls)
        assert not healthy, seen
    healthy, seen = probe_with(gateway, LocalTls(secrets).client())
    assert healthy, seen


def probe_with(addr: str, tls: TlsConfig) -> tuple[bool, str]:
    """grpc.health.v1 Check over `tls`: (SERVING, what was seen)."""
    with sync_channel(addr, tls) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=5
            )
        except grpc.RpcError as exc:
            return False, str(exc.code())  # a failed call is also a grpc.Call
        return reply.status == health_pb2.HealthCheckResponse.SERVING, str(reply.status)


def test_every_service_requires_a_token(compose_stack: ComposeStack) -> None:
    """With the client certificate but no token, or a wrong one, every service refuses a call
    with UNAUTHENTICATED; the admin token of client.env is let in."""
    secrets = compose_stack.project / "secrets"
    admin = (secrets / "admin.token").read_text().strip()
    wrong = admin[:-4] + ("0000" if not admin.endswith("0000") else "1111")
    client = LocalTls(secrets).client()
    for name in ("registry", "coordinator", "gateway"):
        for token in ("", wrong):
            assert list_call(compose_stack, name, client, token) == "UNAUTHENTICATED", name
    assert list_call(compose_stack, "gateway", client, admin) == "OK"
    # The CLI with a token file that cannot be read: one clear line, exit 2.
    env = {**_user_env(), "HIVEWIRE_TOKEN_FILE": str(secrets / "missing.token")}
    out = subprocess.run(
        [sys.executable, "-m", "hivewire.cli", "agents"], cwd=compose_stack.project, env=env,
        capture_output=True, text=True, timeout=COMMAND_TIMEOUT, check=False,
    )  # fmt: skip
    assert out.returncode == 2, out
    assert "HIVEWIRE_TOKEN_FILE=" in out.stderr and "Traceback" not in out.stderr, out.stderr


def _call(channel: grpc.Channel, service: str, metadata: list[tuple[str, str]]) -> object:
    if service == "registry":
        registry = registry_pb2_grpc.RegistryServiceStub(channel)
        request = registry_pb2.RegistryServiceListAgentsRequest()
        return registry.ListAgents(request, timeout=5, metadata=metadata)
    if service == "coordinator":
        coordinator = coordinator_pb2_grpc.CoordinatorServiceStub(channel)
        listing = coordinator_pb2.CoordinatorServiceListTasksRequest()
        return coordinator.ListTasks(listing, timeout=5, metadata=metadata)
    gateway = gateway_pb2_grpc.GatewayServiceStub(channel)
    return gateway.ListAgents(agent_pb2.ListAgentsRequest(), timeout=5, metadata=metadata)


def list_call(stack: ComposeStack, service: str, tls: TlsConfig, token: str) -> str:
    """The status code (name) of a listing call on `service`, with `token` if any."""
    metadata = [("authorization", f"Bearer {token}")] if token else []
    with sync_channel(stack.dialable[service], tls) as channel:
        try:
            _call(channel, service, metadata)
        except grpc.RpcError as exc:
            return str(exc.code().name)  # a failed call is also a grpc.Call
    return "OK"
