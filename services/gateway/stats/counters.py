"""Counters the gateway keeps from the events it reads: rates, latencies, retries, reclaims.

Everything is bounded: rates live in a ring of SLOTS time slots, latency samples in deques of
MAX_SAMPLES, and submit times of tasks in flight in a map of at most MAX_TRACKED entries.
"""

from __future__ import annotations

import time
from collections import Counter, OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

from hivewire.v1 import event_pb2

SLOT_SECONDS = 0.1
SLOTS = 600  # 60 s of history: the longest WatchStats interval
MAX_SAMPLES = 4096
LATENCY_WINDOW = 60.0
MAX_TRACKED = 100_000
MAX_CAPABILITIES = 10_000

_FINISHED = frozenset(
    {
        event_pb2.EVENT_TYPE_TASK_SUCCEEDED,
        event_pb2.EVENT_TYPE_TASK_FAILED,
        event_pb2.EVENT_TYPE_TASK_CANCELLED,
        event_pb2.EVENT_TYPE_TASK_TIMED_OUT,
    }
)


@dataclass
class _Slot:
    index: int = -1
    events: int = 0
    finished: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class Percentiles:
    count: int
    p50: float
    p90: float
    p99: float


def percentiles(samples: list[float]) -> Percentiles:
    """Nearest-rank percentiles of `samples` (seconds); zeros when empty."""
    if not samples:
        return Percentiles(0, 0.0, 0.0, 0.0)
    ordered = sorted(samples)

    def rank(q: float) -> float:
        return ordered[min(len(ordered) - 1, max(0, int(q * len(ordered) + 0.999999) - 1))]

    return Percentiles(len(ordered), rank(0.50), rank(0.90), rank(0.99))


CountedFields = tuple[int, str, str, int, int]
"""What EventCounters.count reads of an event: type, task id, capability, time (ms), attempt."""


def counted_fields(event: event_pb2.Event) -> CountedFields:
    t = event.time
    return (
        event.type,
        event.task_id,
        event.capability,
        t.seconds * 1000 + t.nanos // 1_000_000,
        event.attempt,
    )


class EventCounters:
    """Fed every event by the events hub (synchronously, so it never awaits)."""

    def __init__(
        self, clock: Callable[[], float] = time.monotonic, max_tracked: int = MAX_TRACKED
    ) -> None:
        self._clock = clock
        self._max_tracked = max_tracked
        self._slots = [_Slot() for _ in range(SLOTS)]
        self.retries = 0
        self.reclaims = 0
        self.dead_letters = 0
        self.events = 0
        self.capabilities: set[str] = set()  # seen in events (bounded)
        self._submitted: OrderedDict[str, int] = OrderedDict()  # task id -> submit ms
        self._assignment: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)
        self._end_to_end: deque[tuple[float, float]] = deque(maxlen=MAX_SAMPLES)

    def observe(self, event: event_pb2.Event) -> None:
        self.count(self._clock(), *counted_fields(event))

    def count(
        self,
        now: float,
        kind: int,
        task_id: str,
        capability: str,
        ms: int,
        attempt: int,
    ) -> None:
        """`observe` with the event's fields read already (the collector reads them once for
        every counter it feeds)."""
        slot = self._slot(now)
        slot.events += 1
        self.events += 1
        if kind == event_pb2.EVENT_TYPE_TASK_RETRYING:
            self.retries += 1
        elif kind == event_pb2.EVENT_TYPE_TASK_RECLAIMED:
            self.reclaims += 1
        elif kind == event_pb2.EVENT_TYPE_TASK_DEAD_LETTERED:
            self.dead_letters += 1
        if not task_id:
            return
        if capability and len(self.capabilities) < MAX_CAPABILITIES:
            self.capabilities.add(capability)
        if kind == event_pb2.EVENT_TYPE_TASK_SUBMITTED:
            self._submitted[task_id] = ms
            while len(self._submitted) > self._max_tracked:
                self._submitted.popitem(last=False)
        elif kind == event_pb2.EVENT_TYPE_TASK_ASSIGNED and attempt == 1:
            submitted = self._submitted.get(task_id)
            if submitted is not None:
                self._assignment.append((now, max(0, ms - submitted) / 1000))
        elif kind in _FINISHED:
            slot.finished[capability] += 1
            submitted = self._submitted.pop(task_id, None)
            if submitted is not None:
                self._end_to_end.append((now, max(0, ms - submitted) / 1000))

    def clock(self) -> float:
        return self._clock()

    def current_slot(self) -> int:
        """Index of the slot filling now; slots before it are complete."""
        return int(self._clock() / SLOT_SECONDS)

    def events_per_second(self, window: float, end: int | None = None) -> float:
        return sum(s.events for s in self._window(window, end)) / window

    def throughput(self, window: float, end: int | None = None) -> dict[str, float]:
        """Tasks finished per second over the `window` seconds of whole slots before slot
        `end` (default: the current one), by capability."""
        total: Counter[str] = Counter()
        for slot in self._window(window, end):
            total.update(slot.finished)
        return {cap: n / window for cap, n in total.items()}

    def assignment_latency(self) -> Percentiles:
        return self._latency(self._assignment)

    def end_to_end_latency(self) -> Percentiles:
        return self._latency(self._end_to_end)

    def _latency(self, samples: deque[tuple[float, float]]) -> Percentiles:
        since = self._clock() - LATENCY_WINDOW
        return percentiles([value for at, value in samples if at >= since])

    def _slot(self, now: float) -> _Slot:
        index = int(now / SLOT_SECONDS)
        slot = self._slots[index % SLOTS]
        if slot.index != index:
            slot.index, slot.events = index, 0
            slot.finished.clear()
        return slot

    def _window(self, window: float, end: int | None = None) -> list[_Slot]:
        """Slots of the `window` seconds before slot `end`, the current partial slot excluded."""
        current = self.current_slot()
        end = current if end is None else min(end, current)
        count = min(SLOTS - 1, max(1, round(window / SLOT_SECONDS)))
        wanted = range(end - count, end)
        return [s for i in wanted if (s := self._slots[i % SLOTS]).index == i]
