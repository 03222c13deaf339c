"""One attempt of a handler: result encoding, outcomes, STARTED reports, attempt timeouts."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest

from hivewire.agent import Agent, NonRetryableError, TaskContext
from hivewire.agent._task import encode_result, run_attempt
from hivewire.cli.demo import build_agent, wordcount
from hivewire.v1 import stream_pb2


def envelope(capability: str = "cap", payload: bytes = b"{}") -> stream_pb2.TaskEnvelope:
    return stream_pb2.TaskEnvelope(
        task_id="a" * 32,
        attempt=2,
        attempt_token="t" * 32,
        capability=capability,
        payload=payload,
        agent_id="b" * 32,
    )


async def run(handler: Any, env: stream_pb2.TaskEnvelope | None = None, after: float = 10) -> Any:
    started: list[stream_pb2.TaskResult] = []

    async def report(result: stream_pb2.TaskResult) -> None:
        started.append(result)

    result = await run_attempt(env or envelope(), handler, report, after)
    return result, started


def test_encode_result() -> None:
    assert encode_result(b"x") == b"x"
    assert encode_result("é") == "é".encode()
    assert json.loads(encode_result({"a": [1]})) == {"a": [1]}


async def test_success_copies_the_attempt_fields() -> None:
    async def handler(ctx: TaskContext) -> Any:
        return {"got": ctx.json(), "attempt": ctx.attempt}

    result, started = await run(handler)
    assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
    assert json.loads(result.result) == {"got": {}, "attempt": 2}
    assert (result.task_id, result.attempt_token, result.agent_id) == ("a" * 32, "t" * 32, "b" * 32)
    assert started == []


async def test_sync_handler_runs_in_a_thread() -> None:
    def handler(ctx: TaskContext) -> str:
        return "sync"

    result, _ = await run(handler)
    assert result.result == b"sync"


async def test_a_callable_object_without_a_hash_is_a_handler_too() -> None:
    @dataclasses.dataclass  # eq=True: instances have no hash
    class Handler:
        reply: str

        def __call__(self, ctx: TaskContext) -> str:
            return self.reply

    result, _ = await run(Handler("object"))
    assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED
    assert result.result == b"object"


@pytest.mark.parametrize(
    ("exc", "outcome", "text"),
    [
        (
            NonRetryableError("bad"),
            stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY,
            "NonRetryableError: bad",
        ),
        (KeyError("k"), stream_pb2.TASK_OUTCOME_FAILED, "KeyError: 'k'"),
    ],
)
async def test_failures(exc: Exception, outcome: int, text: str) -> None:
    async def handler(ctx: TaskContext) -> None:
        raise exc

    result, _ = await run(handler)
    assert result.outcome == outcome and result.error == text


async def test_unencodable_result_fails_permanently() -> None:
    async def handler(ctx: TaskContext) -> object:
        return object()

    result, _ = await run(handler)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY
    assert result.error.startswith("TypeError")


async def test_started_is_reported_for_slow_handlers_only() -> None:
    async def slow(ctx: TaskContext) -> str:
        await asyncio.sleep(0.2)  # slower than `after`: the report under test
        return "done"

    result, started = await run(slow, after=0.01)
    assert [s.outcome for s in started] == [stream_pb2.TASK_OUTCOME_STARTED]
    assert not started[0].HasField("end_time")
    assert result.outcome == stream_pb2.TASK_OUTCOME_SUCCEEDED


async def test_attempt_timeout_fails_the_attempt() -> None:
    env = envelope()
    env.attempt_timeout.FromMilliseconds(50)

    async def slow(ctx: TaskContext) -> None:
        await asyncio.sleep(30)  # outlives the attempt timeout under test

    result, _ = await run(slow, env)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED
    assert result.error.startswith("TimeoutError")


async def test_unknown_capability_fails_permanently() -> None:
    result, _ = await run(None)
    assert result.outcome == stream_pb2.TASK_OUTCOME_FAILED_PERMANENTLY


def test_handler_names_are_checked() -> None:
    agent = Agent("x")
    with pytest.raises(ValueError, match="invalid capability"):
        agent.handler("a,b")
    with pytest.raises(ValueError, match="unknown demo capability"):
        build_agent("demo", ["nope"])


def test_default_slots_follow_the_handlers() -> None:
    async def fetch(ctx: TaskContext) -> None:
        return None

    def crunch(ctx: TaskContext) -> None:
        return None

    agent = Agent("x")
    agent.add_handler("fetch", fetch)
    assert agent.max_concurrency == 100  # coroutines share the loop
    agent.add_handler("crunch", crunch)
    assert agent.max_concurrency == 4  # a blocking handler holds a thread per task
    assert Agent("y", max_concurrency=7).max_concurrency == 7
    with pytest.raises(ValueError, match="at least 1"):
        Agent("z", max_concurrency=0)
    # Fixed once it registers: a handler added later does not change the registered slots.
    only_async = Agent("w")
    only_async.add_handler("fetch", fetch)
    only_async._make_transport()
    only_async.add_handler("crunch", crunch)
    assert only_async.max_concurrency == 100


def test_wordcount() -> None:
    ctx = TaskContext("a", 1, "wordcount", b'{"text": "To be, or NOT to be!"}', "b")
    assert wordcount(ctx) == {"words": 6, "counts": {"to": 2, "be": 2, "or": 1, "not": 1}}
