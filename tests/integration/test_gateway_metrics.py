"""Dashboard metrics on the gateway's events hub: subscribers and overflows."""

from __future__ import annotations

from prometheus_client import REGISTRY

from hivewire.v1 import event_pb2
from hivewire_services.common.events import EVENT_FIELD
from hivewire_services.common.keys import Keys
from hivewire_services.common.metrics import DASHBOARD_SUBSCRIBERS
from hivewire_services.common.redis import Redis
from hivewire_services.gateway.events.hub import EventFilter, EventsHub
from tests.waiting import eventually


def _overflows() -> float:
    return REGISTRY.get_sample_value("hivewire_dashboard_overflows_total") or 0.0


async def test_a_slow_subscriber_is_cut_off_and_counted(redis: Redis, keys: Keys) -> None:
    hub = EventsHub(redis, keys.events, queue_size=2, block_ms=100)
    hub.start()
    DASHBOARD_SUBSCRIBERS.set_function(lambda: hub.subscriber_count)
    before = _overflows()
    try:
        slow = hub.subscribe(EventFilter(), None)
        await slow.open()
        assert REGISTRY.get_sample_value("hivewire_dashboard_subscribers") == 1
        event = event_pb2.Event(type=event_pb2.EVENT_TYPE_TASK_SUBMITTED)
        for _ in range(5):
            await redis.xadd(keys.events, {EVENT_FIELD: event.SerializeToString()})
        await eventually(lambda: slow.error is not None, within=10, message="the cut-off")
        assert _overflows() - before == 1
        assert REGISTRY.get_sample_value("hivewire_dashboard_subscribers") == 0
    finally:
        await hub.stop()
