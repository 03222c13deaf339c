"""bench/latency_path.py's split of enqueue -> start, and the one-way floor it compares with."""

from __future__ import annotations

import pytest

from bench import grpc_floor
from bench.latency_path import split


def test_split_pairs_each_stamped_submit_with_its_handler_start() -> None:
    t = 1796694600.0
    lines = [
        (t + 0.0000, "PING"),
        (t + 0.0016, f"EVALSHA abc 11 k1 k2 [[...]] {t - 0.001} 1 t1 a1"),  # its enqueue time
        (t + 0.0020, "XADD hivewire:{hw}:inbox:a1 * envelope ..."),
        (t + 0.0025, "RPUSH bench:lat 0.0034"),
        (t + 0.0026, "INCRBY bench:done 1"),
        (t + 0.0100, "EVALSHA def 9 k1 k2 results 2 ..."),  # a complete script: no stamp
        (t + 0.0216, f"EVALSHA abc 11 k1 k2 [[...]] {t + 0.02} 1 t2 a1"),
        (t + 0.0231, "RPUSH bench:lat 0.0031"),
    ]
    to_script, to_handler = split(lines)
    assert to_script == pytest.approx([0.0026, 0.0016], abs=1e-6)
    assert to_handler == pytest.approx([0.0009, 0.0015], abs=1e-6)


def test_split_refuses_a_record_it_cannot_pair() -> None:
    lines = [(1.0, "EVALSHA abc 11 k [[...]] 1796694642.3171043 1 t1 a1")]
    with pytest.raises(RuntimeError, match="1 stamped submits but 0 handler starts"):
        split(lines)


async def test_the_floor_server_says_when_a_call_reached_its_handler() -> None:
    times = await grpc_floor.one_way(n=5, every=0.0)
    assert len(times) == 5
    assert all(0 < t < 5.0 for t in times)  # after the send, within the call's deadline
