"""Dashboard latency: from a state change committed in Redis to its arrival at a subscriber.

The stack runs as `hivewire up` plus the bench agent (real processes, free ports). Ten
StreamEvents subscribers attach to the gateway; one never reads. A producer submits no-op
tasks at a steady rate, and every event a reading subscriber receives is timed against the
commit time of its entry: the events stream entry id is the Redis server's clock (ms) at
the XADD inside the Lua script that made the change, on this same machine.

    python -m bench.dashboard [--seconds 20] [--rates 50,200]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import grpc

from bench.measure import cpu_seconds
from hivewire.cli.readiness import running_addrs, up_command
from hivewire.v1 import event_pb2, gateway_pb2_grpc, task_pb2

READY = "hivewire is ready"
RESULTS = Path(__file__).parent / "results"
READER_PROCESSES = 3
MAX_BATCH = 256  # what the SDK asks for: batches form only when a reader is behind


@dataclass
class Report:
    subscribers: int
    stalled: int
    seconds: float
    tasks_per_second: float
    events: int
    events_per_reader_process: list[int]
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    stalled_outcome: str
    load_average: float  # 1-minute load average at the end of the run (2-core machine)
    gateway_cpu: float  # CPU seconds the gateway process used per second of the run


def _pct(ordered: list[float], q: float) -> float:
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    kids = [int(k) for k in text.split()]
    return kids + [g for k in kids for g in _children(k)]


def find_service(root: int, name: str) -> int:
    """Pid of `python -m hivewire_services.<name>` under process `root` (0 when not found)."""
    for pid in _children(root):
        try:
            if f"hivewire_services.{name}".encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
        except OSError:
            continue
    return 0


def _commit_ms(cursor: str) -> int:
    return int(cursor.partition("-")[0])


def _start_stack(workdir: Path) -> tuple[list[subprocess.Popen[bytes]], dict[str, str]]:
    env = {**os.environ, "HIVEWIRE_LOG_LEVEL": "WARNING"}
    log = (workdir / "stack.log").open("wb")
    data_dir = workdir / "data"
    up = subprocess.Popen(up_command(data_dir), env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 90
    while READY not in (workdir / "stack.log").read_text(errors="replace"):
        if up.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError("stack did not start:\n" + (workdir / "stack.log").read_text())
        time.sleep(0.2)
    addrs = running_addrs(data_dir)  # every port was chosen by the process that bound it
    env.update(
        HIVEWIRE_GATEWAY_ADDR=addrs["gateway"],
        HIVEWIRE_REGISTRY_ADDR=addrs["registry"],
        HIVEWIRE_COORDINATOR_ADDR=addrs["coordinator"],
        HIVEWIRE_REDIS_URL=f"redis://{addrs['redis']}/0",
    )
    agent = subprocess.Popen(
        [sys.executable, "-m", "hivewire.cli", "agent", "bench.agent:agent"],
        env=env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).parent.parent,
    )  # fmt: skip
    return [agent, up], env


async def _read_streams(gateway: str, streams: int, ready: Any, stop_at: Any) -> list[float]:
    """Open `streams` subscriptions, report ready, then time every event until told to stop."""
    channel = grpc.aio.insecure_channel(gateway)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    request = event_pb2.StreamEventsRequest(max_batch=MAX_BATCH)
    calls = [stub.StreamEvents(request) for _ in range(streams)]
    for call in calls:
        await asyncio.wait_for(call.initial_metadata(), 30)
    ready.set()
    out: list[float] = []

    async def read(call: Any) -> None:
        while True:
            frame = await call.read()
            if frame is grpc.aio.EOF:
                return
            arrived = time.time() * 1000
            events = frame.events.events if frame.HasField("events") else [frame.event]
            out.extend(arrived - _commit_ms(e.cursor) for e in events)

    tasks = [asyncio.create_task(read(c)) for c in calls]
    while True:  # until the producer has set a stop time and it has passed
        if 0 < stop_at.value <= time.time():
            break
        await asyncio.sleep(0.1)
    for call in calls:
        call.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await channel.close()
    return out


def _reader_process(gateway: str, streams: int, ready: Any, stop_at: Any, results: Any) -> None:
    results.put(asyncio.run(_read_streams(gateway, streams, ready, stop_at)))


async def measure(
    gateway: str, seconds: float, rate: float, gateway_pid: int = 0, subscribers: int = 10
) -> Report:
    """Readers run in READER_PROCESSES processes so that the client side, not the gateway,
    is not what gets measured; the stalled subscriber and the producer run here."""
    ctx = multiprocessing.get_context("spawn")
    stop_at = ctx.Value("d", 0.0)
    results = ctx.Queue()
    per_process = [
        len(range(i, subscribers - 1, READER_PROCESSES)) for i in range(READER_PROCESSES)
    ]
    readies = [ctx.Event() for _ in per_process]
    procs = [
        ctx.Process(target=_reader_process, args=(gateway, n, ready, stop_at, results))
        for n, ready in zip(per_process, readies, strict=True)
    ]
    for proc in procs:
        proc.start()
    for ready in readies:
        if not await asyncio.to_thread(ready.wait, 60):
            raise RuntimeError("a reader process did not start")
    channel = grpc.aio.insecure_channel(gateway)
    stub = gateway_pb2_grpc.GatewayServiceStub(channel)
    # The stalled subscriber's HTTP/2 window is pinned at 64 KiB (no BDP probing), so its stall
    # reaches the gateway within the run instead of filling megabytes of window first.
    stalled_channel = grpc.aio.insecure_channel(gateway, options=[("grpc.http2.bdp_probe", 0)])
    stalled = gateway_pb2_grpc.GatewayServiceStub(stalled_channel).StreamEvents(
        event_pb2.StreamEventsRequest()
    )
    await asyncio.wait_for(stalled.initial_metadata(), 30)
    batch = max(1, int(rate / 20))
    cpu_before = cpu_seconds(gateway_pid) if gateway_pid else 0.0
    started = time.monotonic()
    submitted = 0
    while time.monotonic() - started < seconds:
        reqs = [task_pb2.SubmitTaskRequest(capability="noop", payload=b"{}")] * batch
        await stub.SubmitTasks(task_pb2.SubmitTasksRequest(tasks=reqs), timeout=10)
        submitted += batch
        await asyncio.sleep(max(0.0, started + submitted / rate - time.monotonic()))
    elapsed = time.monotonic() - started
    gateway_cpu = (cpu_seconds(gateway_pid) - cpu_before) / elapsed if gateway_pid else 0.0
    stop_at.value = time.time() + 2  # let the last events arrive
    latencies = [await asyncio.to_thread(results.get, True, 120) for _ in procs]
    for proc in procs:
        await asyncio.to_thread(proc.join, 30)
    try:
        while await asyncio.wait_for(stalled.read(), 10) is not grpc.aio.EOF:
            pass
        outcome = "ended without error"
    except grpc.aio.AioRpcError as exc:
        outcome = f"{exc.code().name}: {exc.details()}"
    except TimeoutError:
        outcome = "still open (never cut off)"
    await channel.close()
    await stalled_channel.close()
    every = sorted(v for out in latencies for v in out)
    return Report(
        subscribers=subscribers,
        stalled=1,
        seconds=round(elapsed, 1),
        tasks_per_second=round(submitted / elapsed, 1),
        events=len(every),
        events_per_reader_process=[len(out) for out in latencies],
        p50_ms=round(_pct(every, 0.50), 2),
        p90_ms=round(_pct(every, 0.90), 2),
        p99_ms=round(_pct(every, 0.99), 2),
        max_ms=round(every[-1], 2) if every else 0.0,
        stalled_outcome=outcome,
        load_average=round(os.getloadavg()[0], 2),
        gateway_cpu=round(gateway_cpu, 2),
    )


def markdown(report: Report) -> str:
    return "\n".join([
        f"## Dashboard latency at {report.tasks_per_second:g} tasks/s "
        "(state change committed in Redis -> StreamEvents subscriber)",
        "",
        f"{report.subscribers} subscribers, {report.stalled} of which never reads; "
        f"{report.tasks_per_second} no-op tasks/s for {report.seconds} s "
        f"({report.events} events timed over the 9 reading subscribers, "
        f"in {READER_PROCESSES} processes, max_batch {MAX_BATCH}).",
        "",
        "| p50 | p90 | p99 | max |",
        "| --- | --- | --- | --- |",
        f"| {report.p50_ms} ms | {report.p90_ms} ms | {report.p99_ms} ms | {report.max_ms} ms |",
        "",
        f"The subscriber that never read: {report.stalled_outcome}.",
        f"Load average at the end of the run: {report.load_average} "
        f"(on {os.cpu_count()} cores, shared with whatever else ran); the gateway used "
        f"{report.gateway_cpu} CPU-seconds per second.",
        "Commit times are the events stream entry ids (Redis server clock, whole ms), so each",
        "latency reads up to 1 ms high.",
        "",
    ])  # fmt: skip


def run(seconds: float, rates: list[float]) -> list[Report]:
    with tempfile.TemporaryDirectory(prefix="hivewire-bench-") as tmp:
        processes, env = _start_stack(Path(tmp))
        try:
            time.sleep(2)  # the agent registers
            addr = env["HIVEWIRE_GATEWAY_ADDR"]
            pid = find_service(processes[1].pid, "gateway")
            return [asyncio.run(measure(addr, seconds, rate, pid)) for rate in rates]
        finally:
            for process in processes:
                process.terminate()
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()


def main(argv: list[str] | None = None) -> list[Report]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each run")
    parser.add_argument(
        "--rates", default="50,200", help="tasks submitted per second, one run each"
    )
    args = parser.parse_args(argv)
    reports = run(args.seconds, [float(r) for r in args.rates.split(",")])
    RESULTS.mkdir(exist_ok=True)
    text = "\n".join(markdown(r) for r in reports)
    (RESULTS / "dashboard.json").write_text(
        json.dumps([asdict(r) for r in reports], indent=2) + "\n"
    )
    (RESULTS / "dashboard.md").write_text(text)
    print(text)
    return reports


if __name__ == "__main__":
    main()
