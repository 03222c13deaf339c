"""Traces of the real stack: `hivewire up --demo` exporting to an in-process collector."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest

from hivewire.client import Client
from hivewire.v1 import task_pb2, workflow_pb2
from tests.e2e import traced_stack as fixtures
from tests.e2e.conftest import Stack
from tests.e2e.otel_collector import Collector, SpanRecord
from tests.e2e.traced_stack import cli, one

pytestmark = pytest.mark.e2e

collector = fixtures.collector
traced_stack = fixtures.traced_stack


def _has_task_tree(trace_id: str, capability: str) -> object:
    def check(spans: list[SpanRecord]) -> bool:
        names = {(s.service, s.name) for s in spans if s.trace_id == trace_id}
        return {
            ("hivewire-gateway", "hivewire.v1.GatewayService/SubmitTask"),
            ("hivewire-gateway", "hivewire.v1.CoordinatorService/SubmitTask"),
            ("hivewire-coordinator", "hivewire.v1.CoordinatorService/SubmitTask"),
            ("hivewire-coordinator", f"dispatch {capability}"),
            ("hivewire-agent", f"process {capability}"),
            ("hivewire-agent", f"handle {capability}"),
            ("hivewire-coordinator", "apply result"),
        } <= names

    return check


async def test_one_task_is_one_trace_across_services(
    traced_stack: Stack, collector: Collector
) -> None:
    out = cli(traced_stack, "submit", "echo", "--payload", '{"traced": true}', "--wait", "--json")
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    trace_id = body["trace_id"]
    assert len(trace_id) == 32 and int(trace_id, 16), body
    spans = await collector.wait_for(_has_task_tree(trace_id, "echo"))
    mine = [s for s in spans if s.trace_id == trace_id]
    gw = one(mine, service="hivewire-gateway", name="hivewire.v1.GatewayService/SubmitTask")
    assert gw.kind == "SERVER" and gw.parent_span_id  # child of the CLI's traceparent
    gw_client = one(
        mine, service="hivewire-gateway", name="hivewire.v1.CoordinatorService/SubmitTask"
    )
    assert (gw_client.kind, gw_client.parent_span_id) == ("CLIENT", gw.span_id)
    co = one(mine, service="hivewire-coordinator", name="hivewire.v1.CoordinatorService/SubmitTask")
    assert (co.kind, co.parent_span_id) == ("SERVER", gw_client.span_id)
    dispatch = one(mine, name="dispatch echo")
    assert (dispatch.kind, dispatch.parent_span_id) == ("PRODUCER", co.span_id)
    assert dispatch.attr("hivewire.task_id") == body["task_id"]
    assert dispatch.attr("hivewire.attempt") == 1
    assert dispatch.attr("hivewire.agent_id") == body["agent_id"]
    assert dispatch.attr("hivewire.capability") == "echo"
    process = one(mine, name="process echo")
    assert (process.service, process.kind) == ("hivewire-agent", "CONSUMER")
    assert process.parent_span_id == dispatch.span_id and not process.links
    assert process.attr("hivewire.task_id") == body["task_id"]
    assert process.attr("hivewire.outcome") == "SUCCEEDED"
    handle = one(mine, name="handle echo")
    assert (handle.kind, handle.parent_span_id) == ("INTERNAL", process.span_id)
    applied = one(mine, name="apply result")
    assert applied.service == "hivewire-coordinator"
    assert applied.parent_span_id == process.span_id
    assert applied.attr("hivewire.task_id") == body["task_id"]


async def test_handlers_add_child_spans_through_the_sdk(
    traced_stack: Stack, collector: Collector
) -> None:
    """The demo wordcount handler opens `count words` with ctx.tracer and tags ctx.span."""
    out = cli(
        traced_stack, "submit", "wordcount", "--payload", '{"text": "a b a"}', "--wait", "--json"
    )
    assert out.returncode == 0, out.stderr
    trace_id = json.loads(out.stdout)["trace_id"]

    def has_child(spans: list[SpanRecord]) -> bool:
        names = {s.name for s in spans if s.trace_id == trace_id}
        return {"handle wordcount", "count words"} <= names

    mine = [s for s in await collector.wait_for(has_child) if s.trace_id == trace_id]
    handle = one(mine, name="handle wordcount")
    child = one(mine, name="count words")
    assert (child.service, child.parent_span_id) == ("hivewire-agent", handle.span_id)
    assert child.attr("hivewire.cli.demo.words") == 3
    assert handle.attr("hivewire.cli.demo.distinct_words") == 2


def test_every_process_logs_json_lines(traced_stack: Stack) -> None:
    """HIVEWIRE_LOG_FORMAT=json reaches every service and agent `hivewire up` starts."""
    seen: dict[str, dict[str, object]] = {}
    for line in list(traced_stack.output):
        name, _, rest = line.partition("] ")
        name = name.lstrip("[")
        if name in ("registry", "coordinator", "gateway", "demo-1", "demo-2") and rest.startswith(
            "{"
        ):
            seen.setdefault(name, json.loads(rest))
    assert set(seen) == {"registry", "coordinator", "gateway", "demo-1", "demo-2"}, (
        traced_stack.log()
    )
    for record in seen.values():
        assert {"time", "level", "logger", "message"} <= set(record)


def test_plain_submit_prints_the_trace_id(traced_stack: Stack) -> None:
    out = cli(traced_stack, "submit", "echo", "--payload", "1")
    assert out.returncode == 0, out.stderr
    task_id = out.stdout.strip()
    [line] = [ln for ln in out.stderr.splitlines() if ln.startswith("trace_id ")]
    got = json.loads(cli(traced_stack, "task", "get", task_id, "--json").stdout)
    assert line.split()[1] == got["trace_id"]


async def test_redelivered_attempt_links_to_the_original(
    traced_stack: Stack, collector: Collector
) -> None:
    out = cli(traced_stack, "submit", "fail", "--max-attempts", "2", "--wait", "--json")
    assert out.returncode == 1, out.stderr
    body = json.loads(out.stdout)
    assert (body["state"], body["attempt"]) == ("FAILED", 2)
    trace_id, task_id = body["trace_id"], body["task_id"]

    def both_attempts(spans: list[SpanRecord]) -> bool:
        """Both attempts' dispatch and processing spans, and the retry/dead-letter spans."""
        got = [
            (s.name, s.attr("hivewire.attempt"))
            for s in spans
            if s.attr("hivewire.task_id") == task_id
        ]
        return {
            ("dispatch fail", 1),
            ("dispatch fail", 2),
            ("process fail", 1),
            ("process fail", 2),
            ("task retrying", 1),
            ("task dead-lettered", 2),
        } <= set(got)

    spans = await collector.wait_for(both_attempts)
    dispatches = {
        s.attr("hivewire.attempt"): s
        for s in spans
        if s.name == "dispatch fail" and s.attr("hivewire.task_id") == task_id
    }
    assert set(dispatches) == {1, 2}
    assert all(d.trace_id == trace_id for d in dispatches.values())
    assert dispatches[1].parent_span_id == dispatches[2].parent_span_id  # the submit span
    processing = {
        s.attr("hivewire.attempt"): s
        for s in spans
        if s.name == "process fail" and s.attr("hivewire.task_id") == task_id
    }
    first, second = processing[1], processing[2]
    assert first.trace_id == trace_id and first.parent_span_id == dispatches[1].span_id
    assert first.attr("hivewire.outcome") == "FAILED"
    # The redelivery is linked, not parented: its own trace, pointing at its dispatch.
    assert second.parent_span_id == "" and second.trace_id != trace_id
    assert second.links == [(trace_id, dispatches[2].span_id)]

    def lifecycle(spans: list[SpanRecord]) -> bool:
        names = {s.name for s in spans if s.trace_id == trace_id}
        return {"task retrying", "task dead-lettered"} <= names

    spans = [s for s in await collector.wait_for(lifecycle) if s.trace_id == trace_id]
    retrying = one(spans, name="task retrying")
    assert retrying.service == "hivewire-coordinator"
    assert retrying.parent_span_id == dispatches[1].parent_span_id  # under the submit span
    assert (retrying.attr("hivewire.task_id"), retrying.attr("hivewire.attempt")) == (task_id, 1)
    assert retrying.attr("hivewire.capability") == "fail"
    assert "demo failure on attempt 1" in retrying.attr("hivewire.message")
    dead = one(spans, name="task dead-lettered")
    assert dead.attr("hivewire.attempt") == 2


async def test_workflow_steps_share_the_workflow_trace(
    traced_stack: Stack, collector: Collector
) -> None:
    """A real workflow through the gateway: one trace, every step's task under its span."""
    async with Client(traced_stack.gateway) as client:
        wf = await client.submit_workflow(
            {
                "name": "two-steps",
                "steps": [
                    {"id": "a", "capability": "echo", "payload": {"step": "a"}},
                    {"id": "b", "capability": "echo", "depends_on": ["a"]},
                ],
            }
        )
        done_wf = await client.wait_workflow(wf.workflow_id, timeout=60)
        assert done_wf.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED
        trace_id = done_wf.trace_id
        assert len(trace_id) == 32
        tasks = [await client.get(s.task_ids[0]) for s in done_wf.steps]
        assert [t.trace_id for t in tasks] == [trace_id, trace_id]
    workflow_spans = await collector.wait_for(
        lambda spans: any(s.name == "workflow two-steps" for s in spans)
    )
    (workflow_span_record,) = [s for s in workflow_spans if s.name == "workflow two-steps"]
    assert workflow_span_record.trace_id == trace_id
    assert workflow_span_record.attr("hivewire.workflow_id") == wf.workflow_id
    workflow_id, workflow_span = wf.workflow_id, workflow_span_record.span_id
    ids = {t.task_id for t in tasks}

    def all_processed(spans: list[SpanRecord]) -> bool:
        processed = {s.attr("hivewire.task_id") for s in spans if s.name == "process echo"}
        dispatched = {s.attr("hivewire.task_id") for s in spans if s.name == "dispatch echo"}
        return ids <= processed and ids <= dispatched

    spans = await collector.wait_for(all_processed)
    dispatches = [
        s for s in spans if s.name == "dispatch echo" and s.attr("hivewire.task_id") in ids
    ]
    assert len(dispatches) == 2
    for d in dispatches:
        assert (d.trace_id, d.parent_span_id) == (trace_id, workflow_span)
        assert d.attr("hivewire.workflow_id") == workflow_id
    processing = [
        s for s in spans if s.name == "process echo" and s.attr("hivewire.task_id") in ids
    ]
    assert {s.trace_id for s in processing} == {trace_id}
    assert {s.parent_span_id for s in processing} == {d.span_id for d in dispatches}
    advances = await collector.wait_for(
        lambda spans: any(s.attr("hivewire.advance") == "workflow SUCCEEDED" for s in spans)
    )
    mine = [
        a
        for a in advances
        if a.name == "workflow advance" and a.attr("hivewire.workflow_id") == workflow_id
    ]
    assert {a.attr("hivewire.advance") for a in mine} == {"steps released", "workflow SUCCEEDED"}
    assert {(a.trace_id, a.parent_span_id) for a in mine} == {(trace_id, workflow_span)}


async def test_collector_outage_never_fails_requests(
    traced_stack: Stack, collector: Collector
) -> None:
    """Last in this module: the collector goes away; work still flows and shutdown is clean."""
    collector.stop()
    async with Client(traced_stack.gateway) as client:
        tasks = [await client.submit("echo", {"n": i}) for i in range(20)]
        done = await asyncio.gather(*(client.wait(t.task_id, timeout=60) for t in tasks))
    assert {t.state for t in done} == {task_pb2.TASK_STATE_SUCCEEDED}
    process = traced_stack.process
    process.send_signal(signal.SIGINT)
    code = await asyncio.to_thread(process.wait, 60)
    assert code == 0, traced_stack.log()
