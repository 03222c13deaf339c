"""The one retry delay policy: capped exponential backoff with full jitter."""

from __future__ import annotations

import random
from collections.abc import Iterator


def backoff(initial: float = 0.05, cap: float = 5.0, factor: float = 2.0) -> Iterator[float]:
    """Endless capped exponential delays with full jitter."""
    ceiling = initial
    while True:
        yield random.uniform(ceiling / 2, ceiling)
        ceiling = min(cap, ceiling * factor)
