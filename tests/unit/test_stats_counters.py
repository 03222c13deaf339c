"""The gateway's event counters: rates over windows, latency percentiles, bounded memory."""

from __future__ import annotations

from hivewire.core.clock import ts_from_ms
from hivewire.v1 import event_pb2
from hivewire_services.gateway.stats import counters as stats_counters
from hivewire_services.gateway.stats.counters import EventCounters, percentiles

T = event_pb2


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ev(kind: int, task: str = "t1", ms: int = 0, cap: str = "echo", attempt: int = 1) -> T.Event:
    event = T.Event(type=kind, task_id=task, capability=cap, attempt=attempt)  # type: ignore[arg-type]
    event.time.CopyFrom(ts_from_ms(ms))
    return event


def test_percentiles_nearest_rank() -> None:
    p = percentiles([float(i) for i in range(1, 101)])
    assert (p.count, p.p50, p.p90, p.p99) == (100, 50.0, 90.0, 99.0)
    assert percentiles([]).count == 0
    assert percentiles([7.0]).p99 == 7.0


def test_latencies_rates_and_totals() -> None:
    clock = Clock()
    c = EventCounters(clock)
    for i in range(10):
        c.observe(ev(T.EVENT_TYPE_TASK_SUBMITTED, f"t{i}", ms=1_000))
        c.observe(ev(T.EVENT_TYPE_TASK_ASSIGNED, f"t{i}", ms=1_000 + i))
        c.observe(ev(T.EVENT_TYPE_TASK_SUCCEEDED, f"t{i}", ms=1_000 + 10 * i))
    c.observe(ev(T.EVENT_TYPE_TASK_RETRYING, "x"))
    c.observe(ev(T.EVENT_TYPE_TASK_ASSIGNED, "x", attempt=2))  # a retry: not an assignment sample
    c.observe(ev(T.EVENT_TYPE_TASK_RECLAIMED, "x"))
    c.observe(ev(T.EVENT_TYPE_TASK_DEAD_LETTERED, "x"))
    assert (c.retries, c.reclaims, c.dead_letters, c.events) == (1, 1, 1, 34)
    assert c.assignment_latency().count == 10
    assert c.assignment_latency().p90 == 0.008
    e2e = c.end_to_end_latency()
    assert (e2e.count, e2e.p50, e2e.p99) == (10, 0.04, 0.09)
    # The current 100 ms slot is still filling: rates count completed slots only.
    assert c.throughput(1.0) == {}
    clock.now += 0.1
    assert c.throughput(1.0) == {"echo": 10.0}
    assert c.events_per_second(1.0) == 34.0
    clock.now += 1.0
    assert c.throughput(1.0) == {}  # the window moved past them
    clock.now += stats_counters.LATENCY_WINDOW
    assert c.end_to_end_latency().count == 0


def test_memory_is_bounded() -> None:
    c = EventCounters(Clock())
    for i in range(stats_counters.MAX_TRACKED + 50):
        c.observe(ev(T.EVENT_TYPE_TASK_SUBMITTED, f"t{i}"))
    assert len(c._submitted) == stats_counters.MAX_TRACKED
    for i in range(stats_counters.MAX_SAMPLES + 10):
        c.observe(ev(T.EVENT_TYPE_TASK_SUCCEEDED, f"t{i + 100}"))
    assert len(c._end_to_end) == stats_counters.MAX_SAMPLES
