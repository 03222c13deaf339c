"""The consumer-group reader's pure parts and the one backoff policy."""

from __future__ import annotations

import pytest
from redis.exceptions import ResponseError

from hivewire.core.backoff import Backoff, backoff, backoff_delay
from hivewire_services.common.streams import (
    MAX_CLAIM_EVERY,
    MIN_CLAIM_EVERY,
    GroupOptions,
    claim_done,
    claim_reply,
    is_busygroup,
    is_nogroup,
    read_entries,
)


def options(**overrides: object) -> GroupOptions:
    return GroupOptions(stream="s", group="g", consumer="c", **overrides)  # type: ignore[arg-type]


def test_claim_interval_is_half_the_idle_time_within_bounds() -> None:
    assert options().claim_interval is None
    assert options(claim_idle=4.0).claim_interval == 2.0
    assert options(claim_idle=600.0).claim_interval == MAX_CLAIM_EVERY
    assert options(claim_idle=0.0).claim_interval == MIN_CLAIM_EVERY
    assert options(claim_idle=4.0, claim_every=0.5).claim_interval == 0.5


def test_only_busygroup_and_nogroup_are_recognised() -> None:
    busy = ResponseError("BUSYGROUP Consumer Group name already exists")
    nogroup = ResponseError("NOGROUP No such key 's' or consumer group 'g' in XREADGROUP")
    wrongtype = ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
    assert is_busygroup(busy) and not is_busygroup(nogroup) and not is_busygroup(wrongtype)
    assert is_nogroup(nogroup) and not is_nogroup(busy) and not is_nogroup(wrongtype)


def test_read_entries_flattens_a_reply_and_accepts_a_timed_out_block() -> None:
    a, b = (b"1-0", {b"k": b"a"}), (b"2-0", {b"k": b"b"})
    assert read_entries(None) == []
    assert read_entries([[b"s", [a, b]]]) == [a, b]


def test_claim_reply_with_and_without_the_deleted_ids() -> None:
    entry = (b"1-0", {b"k": b"v"})
    assert claim_reply([b"5-0", [entry], [b"3-0"]]) == (b"5-0", [entry], [b"3-0"])
    assert claim_reply([b"0-0", [entry]]) == (b"0-0", [entry], [])
    assert claim_done(b"0-0") and claim_done("0-0") and not claim_done(b"5-0")


def test_backoff_delay_grows_is_capped_and_jittered() -> None:
    assert 0.025 <= backoff_delay(1) <= 0.05
    assert all(2.5 <= backoff_delay(n) <= 5.0 for n in range(10, 2000, 97))
    assert 0.4 <= backoff_delay(4, initial=0.1, cap=1.0) <= 0.8
    assert len({backoff_delay(30) for _ in range(20)}) > 1


def test_backoff_counts_failures_until_reset() -> None:
    policy = Backoff(initial=1.0, cap=8.0)
    delays = [policy.next_delay() for _ in range(5)]
    assert policy.failures == 5
    assert [d <= c for d, c in zip(delays, [1, 2, 4, 8, 8], strict=True)] == [True] * 5
    assert delays[3] >= 4.0
    policy.reset()
    assert policy.failures == 0 and policy.next_delay() <= 1.0


@pytest.mark.parametrize("n", [1, 3, 12])
def test_backoff_iterator_follows_the_same_policy(n: int) -> None:
    delays = backoff(0.1, 2.0)
    last = [next(delays) for _ in range(n)][-1]
    ceiling = min(2.0, 0.1 * 2 ** (n - 1))
    assert ceiling / 2 <= last <= ceiling
