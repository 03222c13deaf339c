"""The principal record: tenant visibility and the on-behalf-of encoding."""

from __future__ import annotations

from hivewire_services.common.principal import LOCAL, Principal, acting_as, current


def test_tenant_visibility_by_role() -> None:
    client = Principal("alice", "client", "acme")
    assert client.sees("acme")
    assert not client.sees("globex")
    assert not client.sees("")  # unlabelled work is the default tenant's
    assert Principal("root", "admin", "ops").sees("globex")
    assert Principal("gateway", "service", "default").sees("acme")
    assert Principal("builder", "agent", "builder").sees("acme")  # by id only: it lists nothing


def test_on_behalf_of_round_trip_and_rejects_malformed() -> None:
    agent = Principal("builder", "agent", "acme", frozenset({"build", "test"}))
    assert Principal.decode(agent.encode()) == agent
    for bad in ("", "a;b;c", "a;superuser;t;", ";client;t;", "a;client;;", "a;client;t;x;y"):
        assert Principal.decode(bad) is None, bad


def test_acting_as_restores_the_previous_principal() -> None:
    assert current() is LOCAL
    other = Principal("bob", "viewer", "acme")
    with acting_as(other):
        assert current() is other
    assert current() is LOCAL
