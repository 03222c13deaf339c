"""The floor under any unary path: one grpc.aio unary call at a time to a server that does
nothing, in a process of its own (as the gateway and the coordinator are), on loopback.

    python -m bench.grpc_floor [-n 3000]

A Hivewire unary submit makes two such calls in a row (client -> gateway -> coordinator) and
runs a script, so no change to the submit path makes it cheaper than twice this floor; the
peer table quotes it next to Celery's rate (bench/peers/report.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import time
from collections.abc import AsyncIterator
from typing import Any

import grpc

from bench.measure import percentiles
from hivewire_services.common.server import run

METHOD = "/bench.Floor/Echo"
NOW = b"now"
WARMUP = 300
STARTUP_TIMEOUT = 30.0


def _same(b: bytes) -> bytes:
    return b


async def _serve() -> None:
    """The echo server: prints its port, then serves until killed."""
    server = grpc.aio.server()

    async def echo(request: bytes, _context: Any) -> bytes:
        # b"now": when the call reached the handler (bench/latency_path.py's one-way floor).
        return repr(time.time()).encode() if request == NOW else request

    handler = grpc.unary_unary_rpc_method_handler(
        echo, request_deserializer=_same, response_serializer=_same
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("bench.Floor", {"Echo": handler}),)
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


@contextlib.asynccontextmanager
async def echo_server() -> AsyncIterator[Any]:
    """The echo server in a process of its own, and a unary call to it (bytes -> bytes)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.grpc_floor", "--serve", stdout=asyncio.subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), STARTUP_TIMEOUT)
        async with grpc.aio.insecure_channel(f"127.0.0.1:{int(line)}") as channel:
            yield channel.unary_unary(METHOD, request_serializer=_same, response_deserializer=_same)
    finally:
        proc.kill()
        await proc.wait()


async def one_way(n: int = 300, every: float = 0.01) -> list[float]:
    """Seconds from sending a call to its handler starting, `n` calls `every` seconds apart
    (both processes idle in between, as in the latency phase of the peer table)."""
    async with echo_server() as call:
        for _ in range(WARMUP // 10):
            await call(NOW, timeout=5.0)
        out = []
        for _ in range(n):
            sent = time.time()
            out.append(float(await call(NOW, timeout=5.0)) - sent)
            await asyncio.sleep(every)
    return out


async def measure(n: int = 3000) -> dict[str, float]:
    """Calls per second and latency percentiles (ms) of `n` sequential no-op calls."""
    async with echo_server() as call:
        body = b"x" * 64  # about a no-op SubmitTaskRequest
        for _ in range(WARMUP):
            await call(body, timeout=5.0)
        took = []
        began = time.perf_counter()
        for _ in range(n):
            t0 = time.perf_counter()
            await call(body, timeout=5.0)
            took.append(time.perf_counter() - t0)
        elapsed = time.perf_counter() - began
    p = percentiles([t * 1000 for t in took])
    return {"calls_per_s": n / elapsed, "p50_ms": p.p50_ms, "p99_ms": p.p99_ms}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.grpc_floor", description=__doc__)
    parser.add_argument("-n", type=int, default=3000)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        run(_serve)  # on the services' event loop (uvloop), as the gateway and coordinator
        return
    result = asyncio.run(measure(args.n))
    print(
        f"one grpc.aio unary call at a time: {result['calls_per_s']:,.0f} calls/s, "
        f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms"
    )


if __name__ == "__main__":
    main()
