"""Screenshot of `hivewire dashboard` during a demo run: docs/dashboard.png.

Starts `hivewire up --demo` on ports the services bind themselves (port 0), keeps a mixed load
going, runs the dashboard headlessly (Textual's pilot), saves an SVG screenshot and converts it
to PNG with cairosvg (`pip install cairosvg`; it needs the system's libcairo).

    .venv/bin/python scripts/dashboard_screenshot.py
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
import time
from pathlib import Path

from hivewire.cli.readiness import running_addrs, up_command
from hivewire.client import Client
from hivewire.dashboard import Dashboard

DOCS = Path(__file__).resolve().parent.parent / "docs"
TEXT = "the hive hums and the wire carries work from agent to agent " * 20


def start_stack(workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    log = workdir / "stack.log"
    data_dir = workdir / "data"
    process = subprocess.Popen(
        up_command(data_dir, "--demo"),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    deadline = time.monotonic() + 90
    while "hivewire is ready" not in log.read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(log.read_text())
        time.sleep(0.2)
    return process, running_addrs(data_dir)["gateway"]


async def load(gateway: str, stop: asyncio.Event) -> None:
    async with Client(gateway) as client:
        n = 0
        next_workflow = 0.0
        while not stop.is_set():
            batch = [{"capability": "echo", "payload": {"n": n + i}} for i in range(12)]
            batch += [{"capability": "wordcount", "payload": {"text": "to be or not"}}] * 6
            batch += [{"capability": "sleep", "payload": {"seconds": 0.4}}] * 2
            if n % 120 == 0:
                batch.append({"capability": "fail", "payload": {}, "max_attempts": 2})
                batch.append({"capability": "gpu", "payload": {}})  # no agent offers it
            await client.submit_many(batch)
            if time.monotonic() >= next_workflow:  # workflows in progress: a slow pipeline too
                next_workflow = time.monotonic() + 2.0
                await client.submit_workflow(slow_pipeline(n))
                await client.run_command("diamond")
                await client.run_command("analyze-text", {"text": TEXT})
            n += len(batch)
            await asyncio.sleep(0.2)


def slow_pipeline(n: int) -> dict[str, object]:
    """fetch -> three parallel steps -> report, each step a sleep: it stays on screen a while."""
    nap = {"seconds": 1.5}
    return {
        "name": f"nightly-report-{n}",
        "steps": [
            {"id": "fetch", "capability": "sleep", "payload": nap},
            *(
                {"id": f"part-{i}", "capability": "sleep", "payload": nap, "depends_on": ["fetch"]}
                for i in range(3)
            ),
            {"id": "report", "capability": "echo", "depends_on": ["part-0", "part-1", "part-2"]},
        ],
    }


async def shoot(gateway: str, workdir: Path) -> Path:
    stop = asyncio.Event()
    producing = asyncio.create_task(load(gateway, stop))
    app = Dashboard(gateway, stats_interval=0.5)
    async with app.run_test(size=(150, 44)) as pilot:
        await pilot.pause(12)  # sparklines fill, the log scrolls
        path = Path(app.save_screenshot("dashboard.svg", str(workdir)))
        stop.set()
        await producing
        await pilot.press("q")
    return path


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="hivewire-shot-") as tmp:
        process, gateway = start_stack(Path(tmp))
        try:
            svg = asyncio.run(shoot(gateway, Path(tmp)))
        finally:
            process.terminate()
            process.wait(30)
        png = to_png(svg)
    print(f"wrote {png}")  # noqa: T201


def to_png(svg: Path) -> Path:
    import cairosvg  # type: ignore[import-not-found]

    # The SVG asks for Fira Code from the web; render offline with a local monospace font.
    text = svg.read_text().replace('"Fira Code"', '"DejaVu Sans Mono"')
    text = text.replace("Fira Code, monospace", "DejaVu Sans Mono, monospace")
    png = DOCS / "dashboard.png"
    cairosvg.svg2png(bytestring=text.encode(), write_to=str(png), output_width=1800)
    return png


if __name__ == "__main__":
    main()
