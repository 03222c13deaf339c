"""SubmitCoalescer: alone when idle, together while a submission is in flight, per principal."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from hivewire.core import tracing
from hivewire.v1 import task_pb2
from hivewire_services.common.errors import NotFound
from hivewire_services.common.principal import Principal, acting_as, current
from hivewire_services.common.submission import ValidTask
from hivewire_services.coordinator.tasks.coalesce import SubmitCoalescer
from tests.waiting import eventually

ALICE = Principal("alice", "submitter", tenant="a")
BOB = Principal("bob", "submitter", tenant="b")


def spec(payload: str) -> ValidTask:
    return ValidTask(capability="echo", payload=payload.encode(), priority=0, max_attempts=1)


class Store:
    """Records each batch (payloads and the tenant it ran as); the first call waits for `gate`."""

    def __init__(self) -> None:
        self.batches: list[tuple[str, list[bytes]]] = []
        self.gate = asyncio.Event()
        self.entered = asyncio.Event()
        self.fail: Exception | None = None
        self.missing: set[bytes] = set()

    async def submit_each(self, specs: Sequence[ValidTask]) -> list[task_pb2.Task | NotFound]:
        self.batches.append((current().tenant, [s.payload for s in specs]))
        self.entered.set()
        if len(self.batches) == 1:
            await self.gate.wait()
        if self.fail is not None:
            raise self.fail
        return [
            NotFound("gone")
            if s.payload in self.missing
            else task_pb2.Task(payload=s.payload, trace_id=tracing.trace_id_of(s.trace_id))
            for s in specs
        ]


async def started(
    coalescer: SubmitCoalescer, store: Store, *payloads: str
) -> list[asyncio.Task[task_pb2.Task]]:
    """The first payload's call in flight (held), the others waiting behind it."""
    first = asyncio.create_task(coalescer.submit(spec(payloads[0])))
    await store.entered.wait()
    rest = [asyncio.create_task(coalescer.submit(spec(p))) for p in payloads[1:]]
    await queued(coalescer, len(rest))
    return [first, *rest]


async def queued(coalescer: SubmitCoalescer, n: int) -> None:
    await eventually(lambda: coalescer.waiting == n, interval=0.001)


async def test_an_idle_call_goes_at_once_and_alone() -> None:
    store = Store()
    store.gate.set()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    task = await coalescer.submit(spec("x"))
    assert task.payload == b"x"
    assert len(task.trace_id) == 32  # a fresh trace id when the call brings none
    assert [b for _, b in store.batches] == [[b"x"]]


async def test_calls_made_in_one_turn_of_the_loop_go_together() -> None:
    """Callers woken together (as a batch's callers are when it returns) make one batch, not
    one call alone and then the rest."""
    store = Store()
    store.gate.set()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    tasks = await asyncio.gather(*(coalescer.submit(spec(p)) for p in "abcd"))
    assert [t.payload for t in tasks] == [b"a", b"b", b"c", b"d"]
    assert [b for _, b in store.batches] == [[b"a", b"b", b"c", b"d"]]
    again = await asyncio.gather(*(coalescer.submit(spec(p)) for p in "ef"))
    assert [t.payload for t in again] == [b"e", b"f"]
    assert [b for _, b in store.batches][1:] == [[b"e", b"f"]]


async def test_calls_arriving_while_one_is_in_flight_share_one_batch() -> None:
    store = Store()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=3)
    calls = await started(coalescer, store, "a", "b", "c", "d", "e")
    store.gate.set()
    tasks = await asyncio.gather(*calls)
    assert [t.payload for t in tasks] == [b"a", b"b", b"c", b"d", b"e"]
    assert [b for _, b in store.batches] == [[b"a"], [b"b", b"c", b"d"], [b"e"]]
    # Idle again: the next call goes alone at once.
    assert (await coalescer.submit(spec("f"))).payload == b"f"
    assert store.batches[-1][1] == [b"f"]


async def test_batches_are_per_principal_and_run_as_it() -> None:
    store = Store()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    first = asyncio.create_task(coalescer.submit(spec("first")))
    await store.entered.wait()
    waiting = []
    for who, payload in ((ALICE, "a1"), (BOB, "b1"), (ALICE, "a2")):
        with acting_as(who):
            waiting.append(asyncio.create_task(coalescer.submit(spec(payload))))
    await queued(coalescer, 3)
    store.gate.set()
    await asyncio.gather(first, *waiting)
    assert store.batches[1:] == [("a", [b"a1", b"a2"]), ("b", [b"b1"])]


async def test_a_row_that_fails_fails_only_its_caller() -> None:
    store = Store()
    store.missing = {b"gone"}
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    first, gone, kept = await started(coalescer, store, "a", "gone", "kept")
    store.gate.set()
    assert (await first).payload == b"a"
    with pytest.raises(NotFound):
        await gone
    assert (await kept).payload == b"kept"


async def test_a_failed_batch_fails_each_of_its_callers() -> None:
    store = Store()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    calls = await started(coalescer, store, "a", "b", "c")
    store.fail = ConnectionError("redis went away")
    store.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results)
    store.fail = None
    assert (await coalescer.submit(spec("d"))).payload == b"d"


async def test_a_caller_that_left_is_not_sent() -> None:
    store = Store()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    first, left, stays = await started(coalescer, store, "a", "left", "stays")
    left.cancel()
    store.gate.set()
    await asyncio.gather(first, stays)
    assert [b for _, b in store.batches] == [[b"a"], [b"stays"]]


async def test_a_caller_that_leaves_during_its_turn_frees_the_coalescer() -> None:
    """Cancelled in the loop turn it yields before sending: nothing is sent for it, and the
    calls made in that turn still go, together."""
    store = Store()
    store.gate.set()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    left = asyncio.create_task(coalescer.submit(spec("left")))
    others = [asyncio.create_task(coalescer.submit(spec(p))) for p in "ab"]
    await asyncio.sleep(0)  # every call has started; the first yields its turn
    left.cancel()
    done = await asyncio.wait_for(asyncio.gather(*others), 5)
    assert [t.payload for t in done] == [b"a", b"b"]
    assert left.cancelled()
    assert [b for _, b in store.batches] == [[b"a", b"b"]]
    later = await asyncio.wait_for(coalescer.submit(spec("later")), 5)  # not stuck busy
    assert later.payload == b"later"


async def test_each_task_keeps_its_callers_trace_id() -> None:
    store = Store()
    coalescer = SubmitCoalescer(store.submit_each, max_batch=10)
    given = tracing.new_traceparent()
    first = asyncio.create_task(coalescer.submit(spec("a")))
    await store.entered.wait()
    ctx = tracing.context_of(given)
    assert ctx is not None
    token = tracing.attach(ctx)
    try:
        traced = asyncio.create_task(coalescer.submit(spec("b")))
    finally:
        tracing.detach(token)
    await queued(coalescer, 1)
    store.gate.set()
    assert (await traced).trace_id == tracing.trace_id_of(given)
    assert (await first).trace_id != tracing.trace_id_of(given)
