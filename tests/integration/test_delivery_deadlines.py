"""Leases, deadlines, reclaim of an offline agent's inbox, per-task backoff and dead-letter
paging: the coordinator's delivery scripts against a real redis-server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import grpc
import pytest
from google.protobuf.duration_pb2 import Duration

from hivewire.core.wire import INBOX_GROUP
from hivewire.v1 import event_pb2, stream_pb2, task_pb2
from hivewire_services.common.agent_checks import check_running_ids
from hivewire_services.common.errors import FailedPrecondition, InvalidArgument, NotFound
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.tasks.dead_letters import DeadLetters
from hivewire_services.coordinator.tasks.reclaim import Reclaimer
from hivewire_services.registry.task_leases import TaskLeases
from tests.integration.coordinator_helpers import add_agent, read_inbox, send_result
from tests.integration.test_coordinator_flow import Parts
from tests.settings import StackSettings
from tests.waiting import eventually

PENDING = task_pb2.TASK_STATE_PENDING
ASSIGNED = task_pb2.TASK_STATE_ASSIGNED


def dur(seconds: float) -> Duration:
    d = Duration()
    d.FromNanoseconds(int(seconds * 1e9))
    return d


class Delivery(Parts):
    def __init__(
        self, redis: Redis, keys: Keys, settings: StackSettings, ch: grpc.aio.Channel
    ) -> None:
        super().__init__(redis, keys, settings, ch)
        self.reclaimer = Reclaimer(redis, keys, settings, "reclaimer-test", lambda: None)
        self.leases = TaskLeases(redis, keys, settings)
        self.dead = DeadLetters(self.store, redis, keys, settings)

    async def types(self, task_id: str) -> list[int]:
        return [e.type for e in await self.events() if e.task_id == task_id]


@pytest.fixture
async def d(redis: Redis, keys: Keys, settings: StackSettings) -> AsyncIterator[Delivery]:
    channel = grpc.aio.insecure_channel("127.0.0.1:9")  # never dialled: the cache is fed directly
    yield Delivery(redis, keys, settings, channel)
    await channel.close()


async def test_silent_attempt_is_reclaimed_after_its_heartbeat_timeout(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["sleep"])
    [task] = await d.submit("sleep", heartbeat_timeout=dur(1.0))
    assert task.heartbeat_timeout.ToMilliseconds() == 1000
    await d.scheduler.schedule_once()
    [env] = await read_inbox(d.redis, d.keys, agent)
    # Heartbeats naming the task keep it; the lease moves forward each time.
    for _ in range(3):
        await asyncio.sleep(0.4)  # the heartbeat cadence under test: well inside the 1 s timeout
        assert await d.leases.renew(agent, [task.task_id]) == []
        assert await d.reclaimer.reap_once() == 0
    assert (await d.store.get(task.task_id)).state == ASSIGNED
    # Now silent: reclaimed once the timeout has passed.
    assert await eventually(d.reclaimer.reap_once, within=10, message="the reclaim") == 1
    got = await d.store.get(task.task_id)
    assert (got.state, got.attempt) == (PENDING, 1)
    assert "heartbeat timeout" in got.error
    assert int(await d.redis.hget(d.keys.agent_load, agent)) == 0
    types = await d.types(task.task_id)
    assert event_pb2.EVENT_TYPE_TASK_RECLAIMED in types
    assert event_pb2.EVENT_TYPE_TASK_RETRYING in types
    # The superseded attempt's agent is told to stop it; its late result is ignored.
    assert await d.leases.renew(agent, [task.task_id]) == [task.task_id]
    await send_result(d.redis, d.keys, env, result=b"late")
    await d.drain_results()
    assert (await d.store.get(task.task_id)).state == PENDING
    assert (await d.types(task.task_id))[-1] == event_pb2.EVENT_TYPE_RESULT_IGNORED


async def test_heartbeat_renewal_names_foreign_and_cancelled_tasks(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["sleep"])
    other = await add_agent(d.redis, d.keys, d.cache, ["other"])
    [mine] = await d.submit("sleep")
    [cancelled] = await d.submit("sleep")
    await d.scheduler.schedule_once()
    await d.store.cancel(cancelled.task_id)
    unknown = "f" * 32
    assert sorted(
        await d.leases.renew(agent, [mine.task_id, cancelled.task_id, unknown])
    ) == sorted([cancelled.task_id, unknown])
    assert await d.leases.renew(other, [mine.task_id]) == [mine.task_id]
    with pytest.raises(InvalidArgument):
        check_running_ids(["not-an-id"])


async def test_cancelled_attempt_frees_its_slot_when_its_lease_runs_out(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["sleep"], max_concurrency=1)
    [task] = await d.submit("sleep", heartbeat_timeout=dur(0.2))
    await d.scheduler.schedule_once()
    await d.store.cancel(task.task_id)
    assert int(await d.redis.hget(d.keys.agent_load, agent)) == 1

    async def slot_freed() -> bool:
        await d.reclaimer.reap_once()
        return int(await d.redis.hget(d.keys.agent_load, agent)) == 0

    await eventually(slot_freed, within=10, message="the slot freed past the 0.2 s lease")
    assert (await d.store.get(task.task_id)).state == task_pb2.TASK_STATE_CANCELLED


async def test_attempt_past_its_start_to_close_deadline_fails_and_retries(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["sleep"])
    [task] = await d.submit("sleep", attempt_timeout=dur(0.5), max_attempts=2)

    async def assigned() -> int:  # the retry waits out its backoff first
        await d.scheduler.promote_due()
        return await d.scheduler.schedule_once()

    for attempt in (1, 2):
        await eventually(assigned, within=10, message=f"attempt {attempt} assigned")
        [env] = await read_inbox(d.redis, d.keys, agent)
        assert env.attempt == attempt
        assert await d.reclaimer.reap_once() == 0  # the agent gets the first word
        assert await eventually(d.reclaimer.reap_once, within=10, message="the deadline") == 1
    got = await d.store.get(task.task_id)
    assert (got.state, got.attempt) == (task_pb2.TASK_STATE_FAILED, 2)
    assert "start-to-close" in got.error
    [letter] = (await d.dead.list(page_size=10, page_token="")).dead_letters
    assert [e.attempt for e in letter.errors] == [1, 2]


async def test_pending_past_schedule_to_start_is_timed_out(d: Delivery) -> None:
    [late] = await d.submit("nobody", schedule_to_start_timeout=dur(0.2))
    await add_agent(d.redis, d.keys, d.cache, ["sleep"])
    [started] = await d.submit("sleep", schedule_to_start_timeout=dur(0.2))
    await d.scheduler.schedule_once()  # assigned in time: its deadline no longer applies
    assert await eventually(d.reclaimer.reap_once, within=10, message="the time-out") == 1
    got = await d.store.get(late.task_id)
    assert got.state == task_pb2.TASK_STATE_TIMED_OUT
    assert "schedule-to-start" in got.error
    assert await d.redis.zcard(d.keys.pending("nobody")) == 0
    assert event_pb2.EVENT_TYPE_TASK_TIMED_OUT in await d.types(late.task_id)
    assert (await d.store.get(started.task_id)).state == ASSIGNED
    with pytest.raises(FailedPrecondition):
        await d.store.cancel(late.task_id)


async def test_offline_agent_inbox_is_reclaimed_unread_unacked_and_deleted(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["sleep"], max_concurrency=3)
    tasks = await d.submit("sleep", 3)
    assert await d.scheduler.schedule_once() == 3
    inbox = d.keys.inbox(agent)
    read = await d.redis.xreadgroup(INBOX_GROUP, agent, {inbox: ">"}, count=2)
    [(_, entries)] = read
    # One read entry vanishes from the stream while still pending: XAUTOCLAIM reports it
    # as deleted; its attempt is left to the lease.
    await d.redis.xdel(inbox, entries[1][0])
    gone = stream_pb2.TaskEnvelope.FromString(entries[1][1][b"envelope"]).task_id
    await d.redis.zadd(d.keys.reclaim_agents, {agent: int(time.time() * 1000)})
    await d.reclaimer.pass_once()
    states = {t.task_id: (await d.store.get(t.task_id)).state for t in tasks}
    assert states.pop(gone) == ASSIGNED
    assert set(states.values()) == {PENDING}
    assert not await d.redis.exists(inbox)
    assert await d.redis.zcard(d.keys.reclaim_agents) == 0
    assert d.reclaimer.counts["reclaimed"] == 2
    # Reclaimed attempts go back to their queue at once, not after a backoff.
    assert await d.redis.zcard(d.keys.pending("sleep")) == 2


async def test_per_task_backoff_is_used(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["fail"])
    [task] = await d.submit(
        "fail", retry_initial_backoff=dur(20), retry_max_backoff=dur(30), max_attempts=3
    )
    await d.scheduler.schedule_once()
    [env] = await read_inbox(d.redis, d.keys, agent)
    before = int(time.time() * 1000)
    await send_result(d.redis, d.keys, env, stream_pb2.TASK_OUTCOME_FAILED, error="boom")
    await d.drain_results()
    due = float(await d.redis.zscore(d.keys.due, task.task_id)) - before
    assert 10_000 - 1000 <= due <= 20_000 + 1000  # 20 s with equal jitter: 10..20 s


async def test_dead_letters_page_newest_first_and_retry_errors(d: Delivery) -> None:
    agent = await add_agent(d.redis, d.keys, d.cache, ["fail"], max_concurrency=5)
    tasks = await d.submit("fail", 5, max_attempts=1)
    await d.scheduler.schedule_once()
    for env in await read_inbox(d.redis, d.keys, agent):
        await send_result(d.redis, d.keys, env, stream_pb2.TASK_OUTCOME_FAILED, error="x")
    await d.drain_results()
    seen, token = [], ""
    while True:
        page = await d.dead.list(page_size=2, page_token=token)
        seen += [letter.task.task_id for letter in page.dead_letters]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(t.task_id for t in tasks) and len(seen) == 5
    with pytest.raises(NotFound):
        await d.dead.retry("1-1")
    with pytest.raises(InvalidArgument):
        await d.dead.retry("nope")
    with pytest.raises(InvalidArgument):
        await d.dead.list(page_size=0, page_token="x")
