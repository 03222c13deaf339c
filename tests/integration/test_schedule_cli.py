"""`hivewire schedule ...` against a running stack."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from hivewire.cli._app import app
from tests.integration.conftest import MakeStack

runner = CliRunner()


@pytest.mark.timeout(60)
async def test_schedule_commands(make_stack: MakeStack) -> None:
    stack = await make_stack(commands_dir="commands")

    async def cli(*args: str, code: int = 0) -> str:
        argv = ["--addr", stack.gateway_addr, "schedule", *args]
        result = await asyncio.to_thread(runner.invoke, app, argv)
        assert result.exit_code == code, result.output
        return result.output

    created = json.loads(
        await cli("create", "ping", "--every", "1h", "--capability", "ping", "--payload",
                  '{"deep": true}', "--overlap", "buffer-one", "--json")
    )  # fmt: skip
    assert created["every_seconds"] == 3600 and created["overlap"] == "buffer-one"
    bad = await cli("create", "x", "--cron", "not a cron", "--capability", "c", code=2)
    assert "INVALID_ARGUMENT" in bad and "schedule.spec.cron" in bad
    out = await cli("create", "nightly", "--cron", "0 3 * * MON-FRI", "--tz", "Europe/Berlin",
                    "--command", "diamond", "-p", "text=hello")  # fmt: skip
    assert "command diamond" in out and "Europe/Berlin" in out
    listed = (await cli("list")).splitlines()
    assert [row.split()[0] for row in listed[1:]] == ["nightly", "ping"]

    run_id = (await cli("trigger", "ping")).strip()
    assert len(run_id) == 32
    assert "PAUSED" in await cli("pause", "ping")
    assert "ACTIVE" in await cli("resume", "ping")
    shown = await cli("get", "ping")
    assert "fired:    1" in shown
    assert "SCHEDULE_FIRED" in shown and f"task={run_id}" in shown
    assert 'message="paused"' in shown
    await cli("delete", "ping")
    assert "schedule 'ping' not found" in await cli("get", "ping", code=2)
    err = await cli("create", "y", "--every", "10 parsecs", "--capability", "c", code=2)
    assert "duration" in err
