"""`python -m bench.idle [SECONDS]`: what an idle `hivewire up --demo` costs, and how it stops.

Starts the demo stack on free ports (metrics served on any free port), lets it settle, then over
the window measures each process's CPU (from /proc), Redis commands per second by command
(INFO commandstats; commands scripts run count too), and what one /metrics scrape costs; then
sends SIGINT (Ctrl-C) and times each process's exit. Prints a table; Linux only.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import redis

from hivewire.cli.readiness import running_addrs, up_command
from hivewire.cli.redis_users import running_admin_url
from hivewire.core.addr_file import METRICS

SETTLE_S = 5.0
SCRAPES = 20
TICK = os.sysconf("SC_CLK_TCK")
NOISE = ("Traceback", "never retrieved", "did not stop")


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def name_of(pid: int) -> str:
    argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
    if "redis-server" in argv[0]:
        return "redis"
    if "--name" in argv:
        return argv[argv.index("--name") + 1]
    if "-m" in argv:
        return argv[argv.index("-m") + 1].rsplit(".", 1)[-1]
    return Path(argv[0]).name


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime + stime


def calls(r: redis.Redis) -> dict[str, int]:
    return {k.removeprefix("cmdstat_"): int(v["calls"]) for k, v in r.info("commandstats").items()}


def main(window: float) -> None:
    data = Path(tempfile.mkdtemp(prefix="hivewire-idle-"))
    env = {
        **os.environ,
        **{f"HIVEWIRE_{s}_METRICS_PORT": "-1" for s in ("REGISTRY", "COORDINATOR", "GATEWAY")},
    }
    up = subprocess.Popen(
        up_command(data, "--demo"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert up.stdout is not None
    lines: list[str] = []
    for line in up.stdout:
        lines.append(line)
        if "hivewire is ready" in line:
            break
    threading.Thread(target=lambda: lines.extend(up.stdout or ()), daemon=True).start()
    procs = {name_of(pid): pid for pid in children(up.pid)}
    # `hivewire up` runs Redis with ACL users: look inside as its admin.
    r = redis.Redis.from_url(running_admin_url(data, running_addrs(data)["redis"]))
    time.sleep(SETTLE_S)  # the demo agents register; the first passes run

    cpu0, calls0, t0 = {n: cpu_s(p) for n, p in procs.items()}, calls(r), time.monotonic()
    time.sleep(window)  # the idle window under measure
    cpu1, calls1, elapsed = {n: cpu_s(p) for n, p in procs.items()}, calls(r), time.monotonic() - t0
    print(f"idle for {elapsed:.0f} s")
    for name in procs:
        print(f"  {name:12} {100 * (cpu1[name] - cpu0[name]) / elapsed:5.2f}% of a core")
    used = {k: n - calls0.get(k, 0) - (k == "info") for k, n in calls1.items()}
    print(f"  redis commands {sum(used.values()) / elapsed:.2f}/s:")
    for cmd, n in sorted(used.items(), key=lambda kv: -kv[1]):
        if n:
            print(f"    {cmd:16} {n / elapsed:6.2f}/s")

    for name, addr in running_addrs(data, METRICS).items():
        url = f"http://{addr}/metrics"
        urllib.request.urlopen(url, timeout=5).read()  # names learned: the steady state
        c0, k0 = cpu_s(procs[name]), calls(r)
        for _ in range(SCRAPES):
            urllib.request.urlopen(url, timeout=5).read()
        cost = (cpu_s(procs[name]) - c0) / SCRAPES * 1000
        cmds = (sum(calls(r).values()) - sum(k0.values()) - 1) / SCRAPES
        print(f"  scrape {name:12} {cost:4.1f} ms CPU, {cmds:4.1f} Redis commands")

    sent = time.monotonic()
    up.send_signal(signal.SIGINT)
    exited: dict[str, float] = {}
    while len(exited) < len(procs) and time.monotonic() - sent < 60:
        for name, pid in procs.items():
            stat = Path(f"/proc/{pid}/stat")
            if name not in exited and (
                not stat.exists() or stat.read_text().split(") ")[1][0] == "Z"
            ):
                exited[name] = time.monotonic() - sent
        time.sleep(0.02)
    up.wait(60)
    print("  exit after SIGINT: " + ", ".join(f"{n} {s:.2f} s" for n, s in exited.items()))
    noise = [line.rstrip() for line in lines if any(n in line for n in NOISE)]
    print("  noise in the output:", noise or "none")


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 60.0)
