"""Per-caller limits: the token bucket, the stream cap per principal, the bounded key map."""

from __future__ import annotations

import pytest

from hivewire_services.common.errors import ResourceExhausted
from hivewire_services.common.principal import Principal, acting_as
from hivewire_services.common.rate_limit import PrincipalLimits, caller_key

ALICE = Principal("alice", "client", "t1")
BOB = Principal("bob", "client", "t2")


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_key_is_the_principal_when_authenticated_else_the_peer_address() -> None:
    assert caller_key("ipv4:10.1.2.3:5555") == "peer:ipv4:10.1.2.3"
    assert caller_key("ipv6:[::1]:5555") == "peer:ipv6:[::1]"
    assert caller_key("unix:/run/hw.sock") == "peer:unix:/run/hw.sock"
    with acting_as(ALICE):
        assert caller_key("ipv4:10.1.2.3:5555") == "principal:alice"


def test_a_bucket_refuses_past_its_burst_and_says_when_to_come_back() -> None:
    clock = Clock()
    limits = PrincipalLimits(rate=10, burst=3, max_streams=0, clock=clock)
    for _ in range(3):
        limits.admit("a")
    with pytest.raises(ResourceExhausted) as refused:
        limits.admit("a")
    assert refused.value.reason == "RATE_LIMITED"
    assert refused.value.retry_delay == pytest.approx(0.1)
    limits.admit("b")  # another caller has its own bucket
    clock.now += 0.11  # one token back (and a little)
    limits.admit("a")
    with pytest.raises(ResourceExhausted):
        limits.admit("a")


def test_rate_zero_is_off() -> None:
    limits = PrincipalLimits(rate=0, burst=0, max_streams=0)
    for _ in range(10_000):
        limits.admit("a")
    assert not limits.buckets


def test_one_principal_over_its_stream_cap_does_not_refuse_another() -> None:
    limits = PrincipalLimits(rate=0, burst=0, max_streams=2)
    with acting_as(ALICE):
        alice = caller_key("ipv4:10.0.0.1:1")
        limits.open_stream(alice)
        limits.open_stream(alice)
        with pytest.raises(ResourceExhausted) as refused:
            limits.open_stream(alice)
    assert refused.value.reason == "STREAM_LIMIT"
    assert refused.value.retry_delay is not None and refused.value.retry_delay > 0
    with acting_as(BOB):  # same address, another principal
        bob = caller_key("ipv4:10.0.0.1:1")
        limits.open_stream(bob)
    limits.close_stream(alice)
    limits.open_stream(alice)  # a closed stream frees its place
    limits.close_stream(alice)
    limits.close_stream(alice)
    limits.close_stream(bob)
    assert limits.streams == {}  # callers with no stream leave the map


def test_the_bucket_map_is_bounded_least_recently_used_first() -> None:
    limits = PrincipalLimits(rate=1, burst=1, max_streams=0, max_keys=3)
    for key in ("a", "b", "c"):
        limits.admit(key)
    with pytest.raises(ResourceExhausted):
        limits.admit("a")  # "a" is now the most recently used
    limits.admit("d")  # evicts "b"
    assert list(limits.buckets) == ["c", "a", "d"]
