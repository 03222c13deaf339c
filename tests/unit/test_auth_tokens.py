"""Token format and checks, the verified-token cache, the method table's defaults."""

from __future__ import annotations

import pytest

from hivewire_services.common.auth.cache import TtlCache
from hivewire_services.common.auth.table import allowed, is_open
from hivewire_services.common.auth.tokens import check_token_spec, new_token, token_id
from hivewire_services.common.errors import InvalidArgument


def test_tokens_are_random_and_carry_their_id() -> None:
    (id_a, a), (id_b, b) = new_token(), new_token()
    assert a != b and id_a != id_b
    assert token_id(a) == id_a and len(a) == len("hw_") + 32 + 1 + 64
    for bad in ("", "hw_", a[:-1], a + "0", a.replace("hw_", "xx_"), a.upper()):
        assert token_id(bad) is None


@pytest.mark.parametrize(
    ("name", "role", "tenant", "caps", "field"),
    [
        ("", "client", "", [], "name"),
        ("a b", "client", "", [], "name"),
        ("ci", "root", "", [], "role"),
        ("ci", "service", "", [], "role"),
        ("ci", "client", "t/1", [], "tenant"),
        ("ci", "client", "", ["echo"], "capabilities"),
        ("w", "agent", "", ["Echo!"], "capabilities"),
    ],
)
def test_bad_token_specs_name_the_field(
    name: str, role: str, tenant: str, caps: list[str], field: str
) -> None:
    with pytest.raises(InvalidArgument) as refused:
        check_token_spec(name, role, tenant, caps)
    assert [v.field for v in refused.value.violations] == [field]


def test_the_tenant_defaults_to_the_name() -> None:
    assert check_token_spec("acme-ci", "client", "", []) == ("client", "acme-ci", ())
    assert check_token_spec("w", "agent", "acme", ["b", "a", "a"]) == ("agent", "acme", ("a", "b"))


def test_the_cache_is_bounded_and_entries_expire() -> None:
    now = [100.0]
    cache: TtlCache[str] = TtlCache(ttl=2.0, size=2, clock=lambda: now[0])
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"  # a is now the most recently used
    cache.put("c", "C")
    assert len(cache) == 2 and cache.get("b") is None and cache.get("a") == "A"
    now[0] += 2.0
    assert cache.get("a") is None and cache.get("c") is None
    off: TtlCache[str] = TtlCache(ttl=0)
    off.put("a", "A")
    assert off.get("a") is None


def test_the_table_denies_unknown_methods_and_opens_only_health_and_reflection() -> None:
    assert not allowed("/hivewire.v1.GatewayService/Nope", "admin")
    assert allowed("/hivewire.v1.GatewayService/SubmitTask", "client")
    assert not allowed("/hivewire.v1.GatewayService/SubmitTask", "viewer")
    assert is_open("/grpc.health.v1.Health/Check")
    assert is_open("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo")
    assert not is_open("/hivewire.v1.AuthService/ListTokens")
