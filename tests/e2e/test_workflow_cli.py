"""End to end: workflows and custom commands through `hivewire up --demo` and the CLI."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from hivewire.client import Client
from tests.e2e.conftest import Stack

pytestmark = pytest.mark.e2e

TEXT = (
    "It was the best of times it was the worst of times it was the age of wisdom "
    "it was the age of foolishness it was the epoch of belief"
)


def hivewire(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hivewire.cli", *args],
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_banner_tells_how_to_run_commands(stack: Stack) -> None:
    assert "hivewire run analyze-text" in stack.log()
    out = hivewire(stack, "commands")
    assert out.returncode == 0, out.stderr
    assert "analyze-text:" in out.stdout and "diamond:" in out.stdout
    assert "-p text=<string> (required)" in out.stdout


def test_run_analyze_text_counts_in_parallel_on_both_agents(stack: Stack) -> None:
    out = hivewire(
        stack,
        "run", "analyze-text", "-p", f"text={TEXT}", "-p", "chunks=6", "-p", "top=3",
        "--wait", "--json",
    )  # fmt: skip
    assert out.returncode == 0, (out.stdout, out.stderr, stack.log())
    wf = json.loads(out.stdout)
    assert wf["state"] == "SUCCEEDED" and wf["command"] == "analyze-text"
    steps = {s["step_id"]: s for s in wf["steps"]}
    expected = Counter(re.findall(r"[a-z]+", TEXT.lower()))
    merged = steps["merge"]["output"]
    assert merged["words"] == sum(expected.values()) == 30
    assert merged["counts"] == dict(expected)
    assert merged["parts"] == 6
    top = sorted(expected.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
    assert merged["top"] == [{"word": w, "count": c} for w, c in top]
    assert steps["count"]["map_total"] == 6 and len(steps["count"]["task_ids"]) == 6

    async def agents_of(task_ids: list[str]) -> set[str]:
        async with Client(stack.gateway) as client:
            return {(await client.get(t)).agent_id for t in task_ids}

    assert len(asyncio.run(agents_of(steps["count"]["task_ids"]))) == 2


def test_diamond_command_and_workflow_files(stack: Stack, tmp_path: Path) -> None:
    out = hivewire(stack, "run", "diamond", "-p", "text=a b a", "--wait", "--json")
    assert out.returncode == 0, (out.stdout, out.stderr)
    join = {s["step_id"]: s for s in json.loads(out.stdout)["steps"]}["join"]
    assert join["output"]["count"]["counts"] == {"a": 2, "b": 1}
    assert join["output"]["shout"] == {"text": "A B A"}
    path = tmp_path / "flow.yaml"
    path.write_text(
        "name: two-step\nsteps:\n"
        "  - {id: first, capability: echo, payload: {text: hello there}}\n"
        "  - {id: second, capability: wordcount, depends_on: [first]}\n"
    )
    out = hivewire(stack, "workflow", "run", str(path))
    assert out.returncode == 0, out.stderr
    workflow_id = out.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", workflow_id)
    for _ in range(100):
        got = json.loads(hivewire(stack, "workflow", "get", workflow_id, "--json").stdout)
        if got["state"] != "RUNNING":
            break
    assert got["state"] == "SUCCEEDED"
    assert got["steps"][1]["output"] == {"words": 2, "counts": {"hello": 1, "there": 1}}
    listed = json.loads(hivewire(stack, "workflows", "--json").stdout)
    assert workflow_id in {w["workflow_id"] for w in listed}
    table = hivewire(stack, "workflow", "get", workflow_id).stdout
    assert "second" in table and "SUCCEEDED" in table


def test_bad_commands_and_workflows_are_invalid_argument(stack: Stack, tmp_path: Path) -> None:
    out = hivewire(stack, "run", "no-such-command")
    assert out.returncode == 2
    assert "INVALID_ARGUMENT" in out.stderr and "field: name" in out.stderr
    out = hivewire(stack, "run", "analyze-text", "-p", "text=x", "-p", "chunks=many")
    assert out.returncode == 2 and "params.chunks" in out.stderr, out.stderr
    out = hivewire(stack, "run", "analyze-text")
    assert out.returncode == 2 and "params.text" in out.stderr
    cyclic = tmp_path / "cycle.yaml"
    cyclic.write_text(
        "steps:\n  - {id: a, capability: echo, depends_on: [b]}\n"
        "  - {id: b, capability: echo, depends_on: [a]}\n"
    )
    out = hivewire(stack, "workflow", "run", str(cyclic))
    assert out.returncode == 2 and "cycle: a -> b -> a" in out.stderr, out.stderr
