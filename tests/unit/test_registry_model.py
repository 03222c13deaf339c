"""Pure registry logic: agent hash -> Agent, page tokens, request validation, backoff."""

from __future__ import annotations

import pytest

from hivewire.core.backoff import backoff_delay
from hivewire.v1 import agent_pb2, registry_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.registry.model import (
    AgentQuery,
    PagePosition,
    agent_from_hash,
    decode_page_token,
    encode_labels,
    encode_page_token,
    parse_load,
)
from hivewire_services.registry.service import validate_registration


def test_agent_from_hash_maps_every_field() -> None:
    fields = {
        b"name": b"gpu-box",
        b"capabilities": b"echo,train",
        b"labels": encode_labels({"zone": "eu", "gpu/model": "a100"}).encode(),
        b"max_concurrency": b"8",
        b"state": str(agent_pb2.AGENT_STATE_DRAINING).encode(),
        b"register_ms": b"1764000000000",
        b"heartbeat_ms": b"1764000001000",
        b"lease_expire_ms": b"1764000016000",
        b"token_sha256": b"ab" * 32,
        b"seq": b"7",
    }
    agent = agent_from_hash("a" * 32, fields, in_flight=3)
    assert agent.agent_id == "a" * 32
    assert agent.name == "gpu-box"
    assert list(agent.capabilities) == ["echo", "train"]
    assert dict(agent.labels) == {"zone": "eu", "gpu/model": "a100"}
    assert agent.max_concurrency == 8
    assert agent.state == agent_pb2.AGENT_STATE_DRAINING
    assert agent.in_flight == 3
    assert agent.register_time.ToMilliseconds() == 1_764_000_000_000
    assert agent.last_heartbeat_time.ToMilliseconds() == 1_764_000_001_000
    assert agent.lease_expire_time.ToMilliseconds() == 1_764_000_016_000


def test_agent_from_hash_tolerates_missing_and_malformed_fields() -> None:
    agent = agent_from_hash("b" * 32, {b"labels": b"not json", b"state": b"x"})
    assert agent.agent_id == "b" * 32
    assert list(agent.capabilities) == []
    assert dict(agent.labels) == {}
    assert agent.state == agent_pb2.AGENT_STATE_UNSPECIFIED
    assert not agent.HasField("register_time")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, 0), (b"4", 4), (b"-2", 0), (b"junk", 0), (b"99999999999", 2**31 - 1)],
)
def test_parse_load(raw: bytes | None, expected: int) -> None:
    assert parse_load(raw) == expected


@pytest.mark.parametrize("offline", [False, True])
@pytest.mark.parametrize("after", [0, 1, 42, 10**15])
def test_page_token_round_trips(offline: bool, after: int) -> None:
    position = PagePosition(offline, after)
    assert decode_page_token(encode_page_token(position)) == position


def test_a_live_page_token_reads_as_before() -> None:
    """Tokens handed out before the offline group existed still resume the live group."""
    assert decode_page_token("YWdlbnRzOjQy") == PagePosition(False, 42)  # "agents:42"
    assert encode_page_token(PagePosition(False, 42)) == "YWdlbnRzOjQy"


@pytest.mark.parametrize(
    "token",
    [
        "!!!",
        "YWdlbnRzOg",  # agents:
        "bm9wZTox",  # nope:1
        "YWdlbnRzOi0x",  # agents:-1
        "YWdlbnRzOjE" * 9,
        "YWdlbnRzOm9mZmxpbmU6",  # agents:offline:
        "YWdlbnRzOm9mZmxpbmU6b2ZmbGluZTox",  # agents:offline:offline:1
    ],
)
def test_page_token_rejects_garbage(token: str) -> None:
    with pytest.raises(InvalidArgument) as err:
        decode_page_token(token)
    assert [v.field for v in err.value.violations] == ["page_token"]


@pytest.mark.parametrize(
    ("query", "live", "offline"),
    [
        (AgentQuery(), True, False),
        (AgentQuery(include_offline=True), True, True),
        (AgentQuery(state=agent_pb2.AGENT_STATE_OFFLINE), False, True),
        (AgentQuery(state=agent_pb2.AGENT_STATE_ONLINE, include_offline=True), True, False),
        (AgentQuery(capability="echo", include_offline=True), True, True),
    ],
)
def test_which_groups_a_query_lists(query: AgentQuery, live: bool, offline: bool) -> None:
    assert (query.wants_live, query.wants_offline) == (live, offline)


def test_empty_page_token_is_the_first_page() -> None:
    assert decode_page_token("") == PagePosition()


def test_validate_registration_dedupes_capabilities_in_order() -> None:
    request = registry_pb2.RegisterAgentRequest(
        name="w", capabilities=["b", "a", "b"], max_concurrency=1
    )
    assert validate_registration(request) == ["b", "a"]


def test_backoff_is_capped_and_grows() -> None:
    assert backoff_delay(1) <= 0.05
    assert all(backoff_delay(n) <= 5.0 for n in range(1, 200))
    assert backoff_delay(10) > backoff_delay(1)
