"""The Redis ACL users of the services and of direct-Redis agents, built from the key names.

Each service gets a user with the commands its code and its Lua scripts run, on the keys it
touches (keys.py `key_patterns`), read-only where it only reads; operators get an admin user
(redis_acl_cli.py). A trusted agent gets a user of its own, made by the registry at registration
(agent_users.py): its own inbox and XADD on the results stream, nothing else. Rules are plain
ACL SETUSER arguments; docs/security.md shows them, `hivewire redis-acl` prints them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, replace

from hivewire.core.redis_users import check_namespace
from hivewire_services.common.keys import Keys, key_patterns


@dataclass(frozen=True)
class Grant:
    """What one user may do: run `commands` on `write` keys (read and written) and `read` keys
    (read only). Keys are names of `key_patterns`."""

    commands: tuple[str, ...]
    write: tuple[str, ...] = ()
    read: tuple[str, ...] = ()


# Connection upkeep (SELECT for a database other than 0; redis-py's CLIENT SETINFO on connect
# may be refused, it ignores that) and the maxmemory-policy check at start (INFO memory).
CONNECTION = ("ping", "info", "select")
SCRIPTS = ("evalsha", "script|load")
TRANSACTIONS = ("multi", "exec", "discard")
HASH_READ = ("hget", "hmget", "hgetall", "hexists", "hlen")
HASH_WRITE = ("hset", "hdel", "hincrby")
ZSET_READ = (
    "zscore",
    "zcard",
    "zcount",
    "zrange",
    "zrangebyscore",
    "zrevrange",
    "zrevrangebyscore",
)
ZSET_WRITE = ("zadd", "zrem", "zremrangebyscore")
STREAM_READ = ("xread", "xrange", "xrevrange", "xlen", "xinfo|stream", "xinfo|groups")
# A consumer group's side of a stream: create, read, acknowledge, claim, drop handled entries.
GROUP = ("xgroup|create", "xreadgroup", "xack", "xautoclaim", "xclaim", "xpending", "xdel")
# The registry makes and removes the agents' users (agent_users.py).
AGENT_USERS = ("acl|setuser", "acl|deluser", "acl|users")

# Every service checks tokens (read) and appends denied calls to the audit stream.
AUTH_COMMANDS = ("hgetall", "xadd")
# What the token scripts (create.lua, revoke.lua, import.lua, forget.lua) run, on the gateway only.
AUTH_ADMIN = (*SCRIPTS, "hget", "hset", "hdel", "del")
AUTH_WRITE = ("auth_audit",)
AUTH_READ = ("auth_token", "auth_token_names")

SERVICE_GRANTS: dict[str, Grant] = {
    "registry": Grant(
        commands=(
            *CONNECTION, *SCRIPTS, *TRANSACTIONS, *HASH_READ, "hset", *ZSET_READ, *ZSET_WRITE,
            "incr", "pexpire", "xadd", "xgroup|create", *STREAM_READ, *AGENT_USERS,
        ),
        write=(
            "agent", "live_agents", "offline_agents", "agent_seq", "leases", "inbox",
            "agent_changes", "events", "task_leases", "reclaim_agents",
        ),
        read=("agent_load", "task"),
    ),
    "coordinator": Grant(
        commands=(
            *CONNECTION, *SCRIPTS, *TRANSACTIONS, *HASH_READ, *HASH_WRITE, *ZSET_READ,
            *ZSET_WRITE, "get", "set", "del", "exists", "expire", "pexpire", "incr", "incrby",
            "sadd", "srem", "smembers", "scard", "srandmember", "xadd", "xtrim", *STREAM_READ,
            *GROUP,
        ),
        # Redis tries a key against the patterns in this order, on every command a script
        # runs: the keys every task's life writes come first (about 0.5 µs of Redis CPU
        # per command when they came 20th).
        write=(
            "task", "tasks_by_state", "events", "task_leases", "agent_load", "inbox",
            "finished", "pending", "fair", "results", "task_seq", "due", "paused_queues",
            "pending_capabilities", "tasks_index", "request", "start_deadlines",
            "attempt_deadlines", "progress_deadlines", "output", "reclaim_agents",
            "dead_letters", "workflow_updates", "ended_parents", "workflow",
            "workflows_index", "workflows_by_state", "workflows_finished", "workflow_seq",
            "workflow_request", "task_counters", "workflow_timers", "task_children",
            "tenant_tasks", "tenant_workflows",
            "schedule", "schedules_index", "schedules_due",
            "conc_holders", "conc_wait", "rate_limits", "rate_usage", "rate_waiting",
        ),
        read=("agent", "live_agents", "offline_agents", "leases", "hook_events_lost"),
    ),
    # The gateway runs no script and writes no task state: it reads for clients and
    # dashboards, and for agents over gRPC it reads their inboxes and appends their results.
    "gateway": Grant(
        commands=(
            *CONNECTION, *TRANSACTIONS, *HASH_READ, *ZSET_READ, "get", "smembers", "scan",
            *STREAM_READ, "xadd", *GROUP,
        ),
        write=("inbox", "results"),
        read=(
            "task", "tasks_index", "tasks_by_state", "pending", "pending_capabilities", "due",
            "output", "agent", "live_agents", "offline_agents", "agent_load", "events",
            "workflow", "workflows_index", "workflows_by_state", "task_counters",
            "dead_letters", "workflow_updates", "tenant_tasks", "tenant_workflows",
            "rate_limits", "rate_usage", "rate_waiting",
        ),
    ),
    "hooks": Grant(
        commands=(
            *CONNECTION, *SCRIPTS, *TRANSACTIONS, *HASH_READ, *HASH_WRITE, *ZSET_READ,
            *ZSET_WRITE, "del", "exists", "xadd", "incrby", "xgroup|setid", *STREAM_READ, *GROUP,
        ),
        write=("hook_delivery", "hook_due", "hook_entries", "events", "hook_events_lost"),
        read=("task", "workflow", "agent"),
    ),
}  # fmt: skip

# The token check and the audit of every server (services/common/auth); the gateway also runs
# the admin RPCs that create and revoke tokens.
for _role, _grant in SERVICE_GRANTS.items():
    _admin = _role == "gateway"
    SERVICE_GRANTS[_role] = Grant(
        commands=tuple(
            dict.fromkeys((*_grant.commands, *AUTH_COMMANDS, *(AUTH_ADMIN if _admin else ())))
        ),
        write=(*_grant.write, *AUTH_WRITE, *(AUTH_READ if _admin else ())),
        read=(*_grant.read, *(() if _admin else AUTH_READ)),
    )

# A direct-Redis agent: its own inbox as a consumer, and (a selector) XADD on results only.
AGENT_INBOX = (
    "ping", "select", *TRANSACTIONS, "xreadgroup", "xack", "xdel", "xpending", "xautoclaim",
)  # fmt: skip
AGENT_RESULTS = ("xadd",)


def password_hash(password: str) -> str:
    """How Redis stores a password (`#<sha256 hex>`), so no rule carries it in the clear."""
    return hashlib.sha256(password.encode()).hexdigest()


def _keys(patterns: Mapping[str, str], names: tuple[str, ...], mode: str) -> list[str]:
    return [f"{mode}~{patterns[name]}" for name in names]


def grant_rules(grant: Grant, keys: Keys) -> list[str]:
    """ACL rules (after `reset`) for a grant: its commands and key patterns, no channels."""
    patterns = key_patterns(keys)
    return [
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in grant.commands),
        *_keys(patterns, grant.write, ""),
        *_keys(patterns, grant.read, "%R"),
    ]


def service_rules(namespace: str, role: str, *, agent_users: bool = True) -> list[str]:
    """A service's rules; without `agent_users` the registry gets no ACL commands."""
    grant = SERVICE_GRANTS[role]
    if not agent_users:
        grant = replace(grant, commands=tuple(c for c in grant.commands if c not in AGENT_USERS))
    return grant_rules(grant, Keys(check_namespace(namespace)))


def agent_rules(namespace: str, agent_id: str) -> list[str]:
    """Its own inbox (read, acknowledge, delete handled entries), and a selector that allows
    XADD on the results stream and nothing else there."""
    keys = Keys(check_namespace(namespace))
    allowed = (f"+{command}" for command in AGENT_RESULTS)
    results = " ".join(["resetchannels", "-@all", *allowed, f"~{keys.results}"])
    return [
        "resetchannels",
        "-@all",
        *(f"+{command}" for command in AGENT_INBOX),
        f"~{keys.inbox(agent_id)}",
        f"({results})",
    ]


def user_rules(password_sha256: str, rules: list[str]) -> list[str]:
    """Everything after `ACL SETUSER <user>`: from scratch, on, the password by its hash."""
    return ["reset", "on", f"#{password_sha256}", *rules]
