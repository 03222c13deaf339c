"""The one retry delay policy: capped exponential backoff with jitter, for SDK and services."""

from __future__ import annotations

import random
from collections.abc import Iterator

# Past this many doublings every delay is at the cap anyway; bounding the exponent keeps the
# power from overflowing a float after a very long outage.
_MAX_EXPONENT = 64


def backoff_delay(
    failures: int, initial: float = 0.05, cap: float = 5.0, factor: float = 2.0
) -> float:
    """Seconds to wait after `failures` consecutive failures: between half and all of
    min(cap, initial * factor ** (failures - 1)), so retries spread but never collapse to 0."""
    exponent = min(max(failures - 1, 0), _MAX_EXPONENT)
    ceiling = min(cap, initial * factor**exponent)
    return random.uniform(ceiling / 2, ceiling)


def backoff(initial: float = 0.05, cap: float = 5.0, factor: float = 2.0) -> Iterator[float]:
    """Endless delays of `backoff_delay` for the 1st, 2nd, ... consecutive failure."""
    failures = 0
    while True:
        failures += 1
        yield backoff_delay(failures, initial, cap, factor)


class Backoff:
    """Counts consecutive failures and hands out the next delay; `reset()` after a success."""

    def __init__(self, initial: float = 0.05, cap: float = 5.0, factor: float = 2.0) -> None:
        self.initial = initial
        self.cap = cap
        self.factor = factor
        self.failures = 0

    def reset(self) -> None:
        self.failures = 0

    def next_delay(self) -> float:
        """Count one more failure and return how long to wait before the next try."""
        self.failures += 1
        return backoff_delay(self.failures, self.initial, self.cap, self.factor)
