"""The peer producer: `produce.py SYSTEM`, then lines on stdin: `N RATE` (RATE 0: as fast as
one caller can, else that many per second with the enqueue time in each task). It answers
`ready` once connected and `sent` after each batch, so the harness times only the sending."""

from __future__ import annotations

import asyncio
import importlib
import inspect
import sys
import time


async def main(system: str) -> None:
    app = importlib.import_module(f"{system}_app")
    broker = getattr(app, "broker", None)
    if broker is not None:
        await broker.startup()
    print("ready", flush=True)
    for line in sys.stdin:
        n, rate = int(line.split()[0]), float(line.split()[1])
        began = time.perf_counter()
        for i in range(n):
            sent = app.send(time.time() if rate else 0.0)
            if inspect.isawaitable(sent):
                await sent
            if rate:
                await asyncio.sleep(max(0.0, began + (i + 1) / rate - time.perf_counter()))
        print("sent", flush=True)
    if broker is not None:
        await broker.shutdown()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
