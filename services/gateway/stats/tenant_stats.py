"""WatchStats for a caller that sees one tenant: counters fed by its events, counts from its
unfinished tasks and running workflows (read from Redis, bounded), agents as for everyone."""

from __future__ import annotations

from collections import Counter, OrderedDict
from typing import cast

from hivewire.core.convert import enum_name
from hivewire.v1 import event_pb2, stats_pb2, task_pb2, workflow_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.tenancy import tenant_of
from hivewire_services.gateway.stats.counters import EventCounters
from hivewire_services.gateway.stats.state_reader import StateReader

MAX_TENANTS = 256
"""Tenants whose event counters a gateway keeps (the least recently active are dropped)."""
MAX_TENANT_TRACKED = 10_000
"""Tasks in flight whose submit time one tenant's counters keep (for latencies)."""
MAX_TENANT_TASKS = 10_000
"""Unfinished tasks of one tenant read per stats build; past it the counts stop growing."""
MAX_TENANT_WORKFLOWS = 10_000
"""Running workflows read per stats build to count one tenant's."""


class TenantCounters:
    """EventCounters per tenant, for the events about a tenant's work (bounded, LRU)."""

    def __init__(self) -> None:
        self._by_tenant: OrderedDict[str, EventCounters] = OrderedDict()

    def observe(self, event: event_pb2.Event) -> None:
        if event.task_id or event.workflow_id:  # else about no tenant's work (an agent's)
            self.of(event.tenant).observe(event)

    def of(self, raw_tenant: str) -> EventCounters:
        """The counters of the tenant an event names, made (and the oldest dropped) if new."""
        tenant = tenant_of(raw_tenant)
        counters = self._by_tenant.get(tenant)
        if counters is None:
            counters = self._by_tenant[tenant] = EventCounters(max_tracked=MAX_TENANT_TRACKED)
            while len(self._by_tenant) > MAX_TENANTS:
                self._by_tenant.popitem(last=False)
        else:
            self._by_tenant.move_to_end(tenant)
        return counters

    def get(self, tenant: str) -> EventCounters:
        """The tenant's counters (empty ones, not kept, when it had no event lately)."""
        return self._by_tenant.get(tenant) or EventCounters()


async def tenant_base(
    redis: Redis, keys: Keys, tenant: str, everyone: stats_pb2.Stats, counters: EventCounters
) -> stats_pb2.Stats:
    """A tenant's Stats but the rates: its tasks and workflows, the agents of `everyone`."""
    reader = StateReader(redis, keys)
    by_state: Counter[str] = Counter()
    pending: Counter[str] = Counter()
    async for view in reader.unfinished_tasks(MAX_TENANT_TASKS, tenant):
        by_state[enum_name(task_pb2.TaskState, view.state, "TASK_STATE_")] += 1
        if view.state == task_pb2.TASK_STATE_PENDING:
            pending[view.capability] += 1
    agents = {cap.capability: cap.agents for cap in everyone.capabilities}
    capabilities = sorted(set(pending) | counters.capabilities)
    stats = stats_pb2.Stats(
        tenant=tenant,
        agents_by_state=dict(everyone.agents_by_state),
        tasks_by_state=dict(by_state),
        capabilities=[
            stats_pb2.CapabilityStats(
                capability=cap, queue_depth=pending.get(cap, 0), agents=agents.get(cap, 0)
            )
            for cap in capabilities
        ],
        retries=counters.retries,
        reclaims=counters.reclaims,
        dead_letters=counters.dead_letters,
        workflows_running=await _running_workflows(redis, keys, tenant),
    )
    stats.time.CopyFrom(everyone.time)
    return stats


async def _running_workflows(redis: Redis, keys: Keys, tenant: str) -> int:
    index = keys.workflows_by_state(workflow_pb2.WORKFLOW_STATE_RUNNING)
    ids = cast(list[bytes], await redis.zrange(index, 0, MAX_TENANT_WORKFLOWS - 1))
    if not ids:
        return 0
    async with redis.pipeline(transaction=False) as pipe:
        for wid in ids:
            pipe.hget(keys.workflow(wid.decode()), "tenant")
        tenants = cast(list[bytes | None], await pipe.execute())
    return sum(1 for t in tenants if tenant_of(t) == tenant)
