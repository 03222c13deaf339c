"""The ACL rules cover every key, grant each user only its own, and URLs never show a password."""

from __future__ import annotations

import fnmatch
import inspect
import stat
from pathlib import Path

import pytest

from hivewire.core.redis_url import redact_secrets, redact_url
from hivewire.core.redis_users import (
    ROLES,
    agent_user_name,
    ensure_passwords,
    load_passwords,
    url_as,
    user_name,
)
from hivewire_services.common.keys import Keys, key_patterns
from hivewire_services.common.redis_acl import SERVICE_GRANTS, agent_rules, service_rules
from hivewire_services.common.redis_acl_cli import acl_lines

AGENT = "a" * 32


def every_key(keys: Keys) -> dict[str, str]:
    """Every key keys.py makes, by member name (a name-taking key with a valid name)."""
    out = {}
    for attr, member in inspect.getmembers(Keys):
        if attr.startswith("_") or attr == "prefix":
            continue
        if isinstance(member, property):
            out[attr] = getattr(keys, attr)
        elif inspect.isfunction(member):
            arg = 7 if "state" in attr else "f" * 32
            out[attr] = getattr(keys, attr)(arg)
    return out


def test_every_key_is_covered_by_exactly_one_pattern() -> None:
    keys = Keys("ns")
    patterns = key_patterns(keys)
    for attr, key in every_key(keys).items():
        if attr.endswith("_prefix"):
            continue
        matching = [name for name, glob in patterns.items() if fnmatch.fnmatchcase(key, glob)]
        assert len(matching) == 1, (attr, key, matching)


def test_every_grant_names_known_keys_and_only_hooks_touch_hook_keys() -> None:
    names = set(key_patterns(Keys()))
    for role, grant in SERVICE_GRANTS.items():
        assert set(grant.write) <= names and set(grant.read) <= names, role
        assert not set(grant.write) & set(grant.read), role
        hook_keys = {n for n in (*grant.write, *grant.read) if n.startswith("hook")}
        # The coordinator only reads the lost-events counter, for its /metrics.
        if role == "coordinator":
            assert hook_keys <= {"hook_events_lost"} and "hook_events_lost" in grant.read
            continue
        assert not hook_keys or role == "hooks", role


def test_the_gateway_writes_only_inboxes_results_and_tokens() -> None:
    # Its only scripts are the token administration's (services/common/auth).
    rules = service_rules("hw", "gateway")
    assert "+eval" not in rules
    written = [r for r in rules if r.startswith("~")]
    assert written == [
        "~hivewire:{hw}:inbox:*",
        "~hivewire:{hw}:results",
        "~hivewire:{hw}:auth-audit",
        "~hivewire:{hw}:auth-token:*",
        "~hivewire:{hw}:auth-token-names",
    ]
    assert "%R~hivewire:{hw}:task:*" in rules


def test_only_the_registry_may_manage_users_and_only_when_it_makes_agent_users() -> None:
    for role in SERVICE_GRANTS:
        has_acl = any(r.startswith("+acl") for r in service_rules("hw", role))
        assert has_acl == (role == "registry"), role
    assert not any(r.startswith("+acl") for r in service_rules("hw", "registry", agent_users=False))


def test_no_service_may_run_admin_commands() -> None:
    for role in SERVICE_GRANTS:
        rules = service_rules("hw", role)
        assert rules[:2] == ["resetchannels", "-@all"]
        for command in ("+@all", "+flushall", "+config", "+keys", "+debug", "+shutdown"):
            assert command not in rules, (role, command)


def test_an_agent_may_read_its_own_inbox_and_only_append_results() -> None:
    rules = agent_rules("hw", AGENT)
    assert f"~hivewire:{{hw}}:inbox:{AGENT}" in rules
    assert rules[-1] == "(resetchannels -@all +xadd ~hivewire:{hw}:results)"
    assert "+xadd" not in rules[:-1]
    assert not [r for r in rules if "*" in r]


def test_user_names_need_a_plain_namespace() -> None:
    assert user_name("hw", "gateway") == "hivewire.hw.gateway"
    assert agent_user_name("a-b_1", AGENT) == f"hivewire.a-b_1.agent.{AGENT}"
    for bad in ("", "a*", "a:b", "a.b", "a b", "{x}", "x" * 65):
        with pytest.raises(ValueError, match="namespace"):
            service_rules(bad, "gateway")


def test_passwords_file_is_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "d" / "redis-users.json"
    first = ensure_passwords(path)
    assert set(first) == set(ROLES)
    assert len(set(first.values())) == len(ROLES)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert ensure_passwords(path) == first == load_passwords(path)


def test_acl_lines_carry_hashes_not_passwords(tmp_path: Path) -> None:
    passwords = ensure_passwords(tmp_path / "p.json")
    for fmt in ("setuser", "aclfile"):
        text = "\n".join(acl_lines("hw", passwords, fmt=fmt))
        assert not [p for p in passwords.values() if p in text]
    aclfile = acl_lines("hw", passwords, fmt="aclfile")
    assert aclfile[0].startswith("user default off resetpass ")  # nobody can log in as it
    assert aclfile[1].startswith("user hivewire.hw.admin reset on #")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://127.0.0.1:6390/0", "redis://127.0.0.1:6390/0"),
        ("redis://:s3cret@h:1/0", "redis://:***@h:1/0"),
        ("rediss://user:s3cret@h:6380/2", "rediss://user:***@h:6380/2"),
        ("redis://user@h:1/0", "redis://user@h:1/0"),
        ("redis://u:p%40ss@h:1/0?password=s3cret", "redis://u:***@h:1/0?password=***"),
        (
            "rediss://u:s3cret@h:1/0?ssl_ca_certs=/etc/ca.pem",
            "rediss://u:***@h:1/0?ssl_ca_certs=/etc/ca.pem",
        ),
        ("redis://u:s3cret@[::1:1/0", "<redis url>"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_url_as_and_redact_secrets() -> None:
    url = url_as("rediss://old:pw@h:1/0?ssl_ca_certs=/ca.pem", "hivewire.hw.gateway", "p/w:@")
    assert url == "rediss://hivewire.hw.gateway:p%2Fw%3A%40@h:1/0?ssl_ca_certs=/ca.pem"
    assert redact_secrets("x s3cret y s3cret", ["s3cret", ""]) == "x *** y ***"
