"""Tenancy rules: how a tenant is stored, who sees it, request ids per tenant, event filters."""

from __future__ import annotations

import pytest

from hivewire.v1 import event_pb2
from hivewire_services.common import tenancy
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.principal import Principal, acting_as
from hivewire_services.gateway.events.filter import EventFilter

ALICE = Principal("alice", "client", "acme")


def test_default_tenant_is_stored_as_none_and_read_back() -> None:
    assert tenancy.stored("default") == ""
    assert tenancy.stored("acme") == "acme"
    assert tenancy.tenant_of(b"") == tenancy.tenant_of(None) == "default"
    assert tenancy.tenant_of(b"acme") == "acme"
    with pytest.raises(InvalidArgument):
        tenancy.stored("no spaces or *globs*")
    with pytest.raises(InvalidArgument):
        Keys().tenant_tasks("a" * 65)


def test_visibility_and_scope_follow_the_bound_principal() -> None:
    assert tenancy.scope() is None  # LOCAL: the default tenant's admin sees everything
    assert tenancy.visible(b"acme")
    with acting_as(ALICE):
        assert tenancy.scope() == "acme"
        assert tenancy.creating_tenant() == "acme"
        assert tenancy.visible(b"acme") and not tenancy.visible(b"") and not tenancy.visible(b"x")
    with acting_as(Principal("v", "viewer", "default")):
        assert tenancy.visible(None) and not tenancy.visible(b"acme")


def test_request_ids_are_per_tenant_and_unchanged_for_the_default_tenant() -> None:
    assert tenancy.request_digest("acme", "r") != tenancy.request_digest("other", "r")
    # The default tenant's keys are those written before tenants: retries still match them.
    assert tenancy.request_digest("", "r") == (
        "454349e422f05297191ead13e21d3db520e5abef52055e4964b82fb213f593a1"
    )


def test_event_filter_scopes_work_events_not_agent_events() -> None:
    mine = event_pb2.Event(task_id="a" * 32, tenant="acme")
    theirs = event_pb2.Event(workflow_id="b" * 32, tenant="globex")
    legacy = event_pb2.Event(task_id="c" * 32)
    agent = event_pb2.Event(agent_id="d" * 32)
    scoped = EventFilter(tenant="acme")
    assert [scoped.matches(e) for e in (mine, theirs, legacy, agent)] == [True, False, False, True]
    default = EventFilter(tenant="default")
    assert [default.matches(e) for e in (mine, legacy)] == [False, True]
    assert all(EventFilter().matches(e) for e in (mine, theirs, legacy, agent))
