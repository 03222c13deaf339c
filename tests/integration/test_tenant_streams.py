"""Tenants on the dashboard side: StreamEvents (history, live, snapshot) and WatchStats show a
client only its tenant's work; admins see everything.

The principal is bound in-process with `principal.acting_as` around the gateway's own edge
check (which scopes the subscription) and the hub, snapshot and stats code, as the auth
interceptor binds it around each RPC.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from hivewire.v1 import event_pb2, stats_pb2, task_pb2, workflow_pb2
from hivewire_services.common import tenancy
from hivewire_services.common.events import EVENT_FIELD, decode_entry, make_event
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import Principal, acting_as
from hivewire_services.common.redis import Redis
from hivewire_services.common.submission import validate_task
from hivewire_services.common.workflow_spec import validate_workflow
from hivewire_services.coordinator.tasks.store import TaskStore
from hivewire_services.coordinator.workflows.store import WorkflowStore
from hivewire_services.gateway import checks
from hivewire_services.gateway.events.hub import EventsHub, Subscription
from hivewire_services.gateway.events.snapshot import snapshot_events
from hivewire_services.gateway.stats.collector import StatsCollector
from hivewire_services.gateway.stats.state_reader import StateReader
from tests.settings import StackSettings

ALICE = Principal("alice", "client", "acme")
BOB = Principal("bob", "client", "globex")
ADMIN = Principal("root", "admin", "acme")


@pytest.fixture
def store(redis: Redis, keys: Keys, settings: StackSettings) -> TaskStore:
    return TaskStore(redis, keys, settings)


@pytest.fixture
async def hub(redis: Redis, keys: Keys) -> AsyncIterator[EventsHub]:
    events = EventsHub(redis, keys.events, queue_size=100, block_ms=200)
    events.start()
    yield events
    await events.stop()


async def submit(store: TaskStore, settings: StackSettings, who: Principal, n: int) -> list[str]:
    req = task_pb2.SubmitTaskRequest(capability="echo")
    with acting_as(who):
        tasks = await store.submit([validate_task(req, settings) for _ in range(n)])
    return [t.task_id for t in tasks]


async def agent_event(redis: Redis, keys: Keys) -> None:
    """An event about no tenant's work (an agent's), as the registry writes it."""
    event = make_event(event_pb2.EVENT_TYPE_AGENT_REGISTERED, agent_id="a" * 32)
    await redis.xadd(keys.events, {EVENT_FIELD: event.SerializeToString()})


def subscribe(hub: EventsHub, who: Principal, **request: object) -> Subscription:
    """A subscription as StreamEvents makes it for `who` (the edge check scopes it)."""
    with acting_as(who):
        flt, since = checks.event_subscription(event_pb2.StreamEventsRequest(**request))  # type: ignore[arg-type]
    return hub.subscribe(flt, since)


async def take(events: AsyncIterator[event_pb2.Event], n: int) -> list[event_pb2.Event]:
    return [await asyncio.wait_for(anext(events), 10) for _ in range(n)]


async def test_stream_events_history_and_live_are_scoped(
    store: TaskStore, settings: StackSettings, hub: EventsHub, redis: Redis, keys: Keys
) -> None:
    alice = await submit(store, settings, ALICE, 2)
    bob = await submit(store, settings, BOB, 1)
    await agent_event(redis, keys)
    mine = subscribe(hub, ALICE, since_cursor="0-0")
    everything = subscribe(hub, ADMIN, since_cursor="0-0")
    await mine.open()
    await everything.open()
    mine_events, all_events = aiter(mine), aiter(everything)
    try:
        history = await take(mine_events, 3)
        assert [(e.task_id, e.tenant) for e in history[:2]] == [(t, "acme") for t in alice]
        assert history[2].type == event_pb2.EVENT_TYPE_AGENT_REGISTERED  # agents are shared
        assert [e.task_id for e in await take(all_events, 4)][:3] == [*alice, *bob]
        # Live: another tenant's event never reaches the subscriber; its own does.
        [bob_live] = await submit(store, settings, BOB, 1)
        [alice_live] = await submit(store, settings, ALICE, 1)
        [live] = await take(mine_events, 1)
        assert (live.task_id, live.tenant) == (alice_live, "acme")
        assert [e.task_id for e in await take(all_events, 2)] == [bob_live, alice_live]
        # Filtering by another tenant's task id finds nothing of it either.
        theirs = subscribe(hub, ALICE, since_cursor="0-0", task_id=bob[0])
        await theirs.open()
        try:
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(anext(aiter(theirs)), 0.5)
        finally:
            theirs.close()
    finally:
        mine.close()
        everything.close()


async def test_snapshot_shows_only_the_tenants_unfinished_tasks(
    store: TaskStore, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    alice = await submit(store, settings, ALICE, 2)
    bob = await submit(store, settings, BOB, 3)
    reader = StateReader(redis, keys)
    with acting_as(ALICE):
        flt, _ = checks.event_subscription(event_pb2.StreamEventsRequest(include_snapshot=True))
    # The limit counts the tenant's own tasks: another tenant's many tasks do not crowd it out.
    snap = [e async for e in snapshot_events(reader, flt, max_tasks=2)]
    assert [(e.task_id, e.tenant, e.snapshot) for e in snap] == [(t, "acme", True) for t in alice]
    with acting_as(ALICE):
        one, _ = checks.event_subscription(event_pb2.StreamEventsRequest(task_id=bob[0]))
    assert [e async for e in snapshot_events(reader, one, max_tasks=10)] == []
    with acting_as(ADMIN):
        every, _ = checks.event_subscription(event_pb2.StreamEventsRequest())
    assert {e.task_id async for e in snapshot_events(reader, every, 10)} == {*alice, *bob}


async def test_watch_stats_counts_the_tenants_work_only(
    store: TaskStore, settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    await submit(store, settings, ALICE, 3)
    await submit(store, settings, BOB, 2)
    workflows = WorkflowStore(redis, keys, settings)
    req = workflow_pb2.SubmitWorkflowRequest(name="w")
    req.steps.add(step_id="a", capability="echo")
    with acting_as(ALICE):
        await workflows.create(validate_workflow(req, settings))
    collector = StatsCollector(redis, keys, lambda: 1)
    for entry_id, fields in await redis.xrange(keys.events):
        collector.observe(decode_entry(entry_id, fields))

    async def stats_as(who: Principal) -> stats_pb2.Stats:
        with acting_as(who):  # what WatchStats does for the caller
            return await collector.snapshot(1.0, None, tenancy.scope())

    mine = await stats_as(ALICE)
    assert mine.tenant == "acme"
    assert dict(mine.tasks_by_state) == {"PENDING": 3}
    assert [(c.capability, c.queue_depth) for c in mine.capabilities] == [("echo", 3)]
    assert mine.workflows_running == 1
    theirs = await stats_as(BOB)
    assert dict(theirs.tasks_by_state) == {"PENDING": 2}
    assert theirs.workflows_running == 0
    everyone = await stats_as(ADMIN)
    assert everyone.tenant == ""
    assert everyone.tasks_by_state["PENDING"] == 5
    assert everyone.subscribers == 1
