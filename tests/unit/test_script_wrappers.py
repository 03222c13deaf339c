"""The typed script wrappers: the KEYS and ARGV each one sends, and the layouts scripts read."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from hivewire_services.common import lua
from hivewire_services.common.keys import Keys
from hivewire_services.common.lua import constants
from hivewire_services.common.task_fields import (
    LOADED_FIELDS,
    TASK_FIELDS,
    NewTask,
    PeekedTask,
    lua_rows,
)
from hivewire_services.common.workflow_spec import StepDef
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import model, scripts, tasklua
from hivewire_services.coordinator.workflows import scripts as wf_scripts
from hivewire_services.coordinator.workflows.plan import Launch, Plan

KEYS = Keys("t")
SETTINGS = CoordinatorSettings()
CONTEXT = 7  # ARGV[1..7] of every tasklib script
SERVICES = Path(__file__).resolve().parents[2] / "services"


class Recorder:
    """Stands in for the registered script object: records one call, returns `reply`."""

    def __init__(self, reply: Any) -> None:
        self.reply = reply
        self.keys: list[str] = []
        self.args: list[Any] = []

    async def __call__(self, keys: Sequence[str] = (), args: Sequence[Any] = ()) -> Any:
        self.keys, self.args = list(keys), list(args)
        return self.reply


def recording(wrapper: Any, reply: Any) -> Recorder:
    wrapper._script = Recorder(reply)
    return wrapper._script  # type: ignore[no-any-return]


@pytest.fixture
def redis() -> Redis:
    return Redis()  # never connects: the recorder replaces the script call


async def test_assign_sends_context_then_rows_in_field_order(redis: Redis) -> None:
    assign = scripts.Assign(redis, KEYS, SETTINGS)
    rec = recording(assign, [1, b"3"])
    rows = [
        scripts.AssignRow("a1", "g1", 1, "tok", b"env"),
        scripts.AssignRow("a2", "g1", 2, "t", b""),
    ]
    assert await assign(5, rows) == [1, 3]
    assert rec.keys == tasklua.context_keys(KEYS)
    assert rec.args[:CONTEXT] == tasklua.context_args(KEYS, SETTINGS, 5)
    assert rec.args[CONTEXT:] == [2, "a1", "g1", 1, "tok", b"env", "a2", "g1", 2, "t", b""]


async def test_progress_sends_each_report_head_then_its_chunks(redis: Redis) -> None:
    progress = scripts.Progress(redis, KEYS, SETTINGS)
    rec = recording(progress, [1, 1, 3, 0])
    head = scripts.ProgressRow(b"1-0", "t1", 2, "tok", "g1", 10, b"p", "msg", 2)
    bare = scripts.ProgressRow(b"1-1", "t2", 1, "tok2", "g1", 11, b"", "", 1)
    reports = [scripts.ProgressReport(head, [b"c1", b"c2"]), scripts.ProgressReport(bare, [b"c3"])]
    assert await progress(9, "grp", reports) == [1, 1, 3, 0]
    assert rec.keys == [*tasklua.context_keys(KEYS), KEYS.results]
    assert rec.args[CONTEXT:] == [
        "grp", SETTINGS.task_output_max_bytes, 2,
        *head, b"c1", b"c2",
        *bare, b"c3",
    ]  # fmt: skip
    assert "local PROGRESS_ROW_CHUNKS = 9" in lua.script_source(
        SERVICES / "coordinator/tasks/progress.lua", layouts=scripts.Progress.layouts
    )


async def test_complete_sends_group_count_and_eleven_values_per_result(redis: Redis) -> None:
    complete = scripts.Complete(redis, KEYS, SETTINGS)
    rec = recording(complete, [b"1", 0, 0, 0])
    row = scripts.CompleteRow(b"1-0", "t1", 2, "tok", "g1", 3, b"out", "", 10, "", 0.5)
    assert await complete(9, "grp", [row]) == [1, 0, 0, 0]
    assert rec.keys == [*tasklua.context_keys(KEYS), KEYS.results]
    assert rec.args[CONTEXT:] == [
        "grp",
        1,
        b"1-0",
        "t1",
        2,
        "tok",
        "g1",
        3,
        b"out",
        "",
        10,
        "",
        0.5,
    ]
    assert len(scripts.CompleteRow._fields) == 11


async def test_reclaim_names_the_inbox_and_reclaim_set(redis: Redis) -> None:
    reclaim = scripts.Reclaim(redis, KEYS, SETTINGS)
    rec = recording(reclaim, 2)
    agent = "b" * 32
    rows = [scripts.ReclaimRow(b"1-0", "t1", 1), scripts.ReclaimRow(b"2-0", "", 0)]
    assert await reclaim(3, "inbox-group", agent, 0.25, rows) == 2
    assert rec.keys[-2:] == [KEYS.inbox(agent), KEYS.reclaim_agents]
    assert rec.args[CONTEXT:] == ["inbox-group", agent, 0.25, 2, b"1-0", "t1", 1, b"2-0", "", 0]


async def test_reap_cancel_retry_dead_and_count_events(redis: Redis) -> None:
    reap = scripts.Reap(redis, KEYS, SETTINGS)
    rec = recording(reap, [b"1", 2, 0, b"1700000000000"])
    assert await reap(4, 100, 0.5) == scripts.Reaped(1, 2, 0, 1_700_000_000_000)
    assert rec.args[CONTEXT:] == [100, 0.5]
    recording(reap, [0, 0, 0, -1])
    assert (await reap(4, 100, 0.5)).next_due is None  # nothing waits
    cancel = scripts.Cancel(redis, KEYS, SETTINGS)
    rec = recording(cancel, 2)
    assert await cancel(4, "t1") == 2
    assert rec.args[CONTEXT:] == ["t1"]
    retry = scripts.RetryDead(redis, KEYS, SETTINGS)
    rec = recording(retry, [b"NOT_FAILED", b"t1", 3])
    assert await retry(4, "1-0") == ["NOT_FAILED", "t1", "3"]
    count = scripts.CountEvents(redis, KEYS)
    rec = recording(count, [1, 0])
    rows = [scripts.CountRow(b"1-0", "submitted|echo"), scripts.CountRow(b"2-0", "")]
    assert await count("metrics", rows) == [1, 0]
    assert rec.keys == [KEYS.events, KEYS.task_counters]
    assert rec.args == ["metrics", 2, b"1-0", "submitted|echo", b"2-0", ""]


async def test_submit_sends_json_rows_in_new_task_order_then_payloads_then_offers(
    redis: Redis,
) -> None:
    submit = scripts.Submit(redis, KEYS, SETTINGS)
    rec = recording(submit, [[b"t1", b"t0"], [1], [b"2"]])
    task = NewTask("t1", "echo", 5, 3, "{}", "", 0, "tp", "", "", s2s_ms=1000)
    rows = [scripts.SubmitRow(task, "", b"p1"), scripts.SubmitRow(task, "req-key", b"p2")]
    offer = scripts.AssignRow("t1", "g1", 1, "tok", b"env")
    assert await submit(8, rows, [offer]) == scripts.Submitted(["t1", "t0"], [1], [2])
    assert rec.keys == [
        *tasklua.context_keys(KEYS), KEYS.tasks_index, KEYS.task_seq, KEYS.paused_queues,
    ]  # fmt: skip
    assert rec.args[:CONTEXT] == tasklua.context_args(KEYS, SETTINGS, 8)
    assert rec.args[CONTEXT : CONTEXT + 2] == [tasklua.REQUEST_ID_TTL_SECONDS, 2]
    table = json.loads(rec.args[CONTEXT + 2])
    assert table[1] == [*map(str, task), "req-key"]  # text: cheaper for cjson and HSET
    assert dict(zip(NewTask._fields, table[0], strict=False))["s2s_ms"] == "1000"
    assert rec.args[CONTEXT + 3 :] == [b"p1", b"p2", 1, "t1", "g1", 1, "tok", b"env"]


async def test_peek_sends_agents_per_capability_and_returns_rows_by_task_id(
    redis: Redis,
) -> None:
    peek = scripts.Peek(redis, KEYS, SETTINGS)
    row = [b"t1", b"0", b"{}", b"p", None, b"0", b"tp", b"0", b"500"]
    rec = recording(peek, [2, b"1700", [b"a1", b"3"], row, []])
    got = await peek(9, 512, 100, 64, [("echo", [("a1", 4), ("a2", 1)]), ("resize", [])])
    assert rec.keys == [
        KEYS.due, KEYS.events, KEYS.agent_load, KEYS.paused_queues,
        KEYS.pending("echo"), KEYS.pending("resize"),
    ]  # fmt: skip
    assert rec.args == [
        KEYS.prefix, 9, 512, SETTINGS.events_maxlen, 100, 64,
        "echo", 2, "a1", 4, "a2", 1, "resize", 0,
    ]  # fmt: skip
    assert got == scripts.PassRead(
        2,
        1700,
        {"a1": 3},
        [{"t1": PeekedTask(b"0", b"{}", b"p", None, b"0", b"tp", b"0", b"500")}, {}],
    )


async def test_advance_encodes_the_plan_after_the_creation_context(redis: Redis) -> None:
    wf = wf_scripts.WorkflowScripts(redis, KEYS, SETTINGS)
    rec = Recorder(3)
    wf._advance = rec  # type: ignore[assignment]
    step = StepDef("s1", "echo", {}, priority=2, max_attempts=4, timeout_ms=50, map_over="s0")
    plan = Plan(launches=[Launch(step, [b"a"])], fails=[("s2", "bad")], finish=(2, "done"))
    wid = "c" * 32
    assert await wf.advance(6, wid, plan) == 3
    assert rec.keys[:4] == tasklua.creation_keys(KEYS)
    assert rec.keys[4] == KEYS.workflow(wid)
    head = wf_scripts.LaunchOp("s1", "echo", 2, 4, "{}", 50, "1", "", 1, 1, 0, "", 0, 0, "")
    ops = rec.args[4:]
    assert ops[:2] == [3, "L"]
    assert ops[2 : 2 + len(head)] == list(head)
    assert ops[3 + len(head) :] == [b"a", "F", "s2", "bad", "W", 2, "done"]


def test_field_lists_are_declared_once_and_reach_lua() -> None:
    assert len(set(TASK_FIELDS)) == len(TASK_FIELDS)
    assert set(LOADED_FIELDS) <= set(TASK_FIELDS)
    assert set(PeekedTask._fields) <= set(TASK_FIELDS)
    assert NewTask._fields[0] == "task_id"  # the key of the hash; taskcreate.lua skips it
    assert set(NewTask._fields[1:]) <= set(TASK_FIELDS)
    lua = constants()
    assert "local NEW_TASK = {'task_id', 'capability', 'priority'," in lua
    assert "local TASK_LOADED_FIELDS = {'state', 'attempt'," in lua
    assert f"local NEW_TASK_WIDTH = {len(NewTask._fields)}\n" in lua
    for i, field in enumerate(NewTask._fields, 1):
        assert f"local NEW_TASK_{field.upper()} = {i}\n" in lua


LAYOUTS = [
    ("tasks/assign.lua", scripts.Assign.layouts),
    ("tasks/complete.lua", scripts.Complete.layouts),
    ("tasks/reclaim.lua", scripts.Reclaim.layouts),
    ("tasks/metrics_feed.lua", {"COUNT_ROW": scripts.CountRow._fields}),
    ("workflows/advance.lua", {"LAUNCH_OP": wf_scripts.LaunchOp._fields}),
    ("tasks/submit.lua", scripts.Submit.layouts),
]


@pytest.mark.parametrize(("path", "layouts"), LAYOUTS, ids=[p for p, _ in LAYOUTS])
def test_row_layouts_reach_lua_as_index_constants(path: str, layouts: lua.Layouts) -> None:
    """A row type's field order is the ARGV layout: each field is a generated index, and every
    row index a script reads is one of those (a typo would be an undefined global in Redis)."""
    script = SERVICES / "coordinator" / path
    libs = (tasklua.TASKCREATE, tasklua.TASKLIB, tasklua.FLOWGATE, tasklua.ASSIGNLIB)
    source = lua.script_source(script, libs, layouts)
    for name, fields in {**layouts, **lua_rows()}.items():
        index = {f"{name}_{f.upper()}": i for i, f in enumerate(fields, 1)}
        index[f"{name}_WIDTH"] = len(fields)
        # Only the constants the script and its libraries use are emitted (Lua's 200 locals).
        for const in set(re.findall(rf"\b{name}_[A-Z0-9_]+\b", source)):
            assert f"local {const} = {index[const]}\n" in source, const
        generated = set(index)
        used = set(re.findall(rf"\b{name}_[A-Z0-9_]+\b", script.read_text()))
        assert used <= generated, f"{path} reads {used - generated}"
    assert layouts == {} or any(f"{name}_WIDTH" in script.read_text() for name in layouts)
    assert "named(" not in source


def test_a_submission_reads_back_as_task_from_new_builds_it() -> None:
    """task_from_new (the submit reply) builds the Task a read of the new hash would show."""
    new = NewTask("a" * 32, "echo", 7, 3, '{"gpu": "1"}', "r1", 1500, "", "w", "s", 2000, 3000)
    fields = {**new._asdict(), "payload": b"p", "create_ms": 1234, "state": 1, "attempt": 0}
    raw = {k: str(v).encode() if not isinstance(v, bytes) else v for k, v in fields.items()}
    expected = model.task_from_fields(new.task_id, raw)
    assert model.task_from_new(new, b"p", 1234, {"gpu": "1"}) == expected
