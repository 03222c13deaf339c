"""The fields of a task hash in Redis, declared once for the Python code and the Lua scripts."""

from __future__ import annotations

from typing import NamedTuple

__all__ = ["LOADED_FIELDS", "TASK_FIELDS", "NewTask", "PeekedTask", "lua_rows", "lua_tables"]


class NewTask(NamedTuple):
    """A task to create as scripts receive it: its id, then the hash fields it starts with.

    taskcreate.lua reads a row by this layout (generated as `NEW_TASK_<FIELD>` indexes) and
    writes the fields under these names (the `NEW_TASK` list), so this order is the row layout
    of submit.lua and the names are the hash field names. Zero durations mean the defaults.
    """

    task_id: str
    capability: str
    priority: int
    max_attempts: int
    labels: str
    request_id: str
    timeout_ms: int
    trace_id: str
    workflow_id: str
    step_id: str
    s2s_ms: int = 0
    hb_ms: int = 0
    backoff_ms: int = 0
    backoff_max_ms: int = 0
    progress_ms: int = 0
    tenant: str = ""  # '' for the default tenant (tenancy.stored)
    fairness_key: str = ""
    fairness_weight: int = 1
    due_ms: int = 0
    """A delayed start (epoch ms): later than the script's now, the task is created SCHEDULED."""
    ckey: str = ""
    """Concurrency key ('' for none), its limit and ConcurrencyStrategy (concurrency.lua)."""
    climit: int = 0
    cstrategy: int = 0
    rate: str = ""
    """Rate limit units as JSON {name: units} ('' for none; flowgate.lua)."""


TASK_FIELDS: tuple[str, ...] = (
    *NewTask._fields[1:],
    "payload",
    "state",
    "attempt",
    "seq",
    "create_ms",
    "assign_ms",
    "start_ms",
    "end_ms",
    "result",
    "error",
    "agent_id",
    "token",
    "held",
    "attempt_base",
    "errors",
    "progress",
    "output_bytes",
    "output_dropped",
    "fair_tag",
    "parent_task_id",
    "waiting",
    "children",
)
"""Every field of a task hash: NewTask's, then those the scripts set as the task moves.

`progress` is the current attempt's TaskProgress (bytes); `output_bytes` (present once the task
has output) and `output_dropped` count the bytes of the output stream and those dropped past
the limit (progress.lua); `fair_tag` is the task's virtual time in its capability's fair queue
(taskcreate.lua enqueue); `parent_task_id` names the task that spawned a child (spawn.lua),
`children` marks a task that spawned some;
`waiting` says why a PENDING task is parked (flow control)."""

LOADED_FIELDS: tuple[str, ...] = (
    "state",
    "attempt",
    "token",
    "capability",
    "seq",
    "max_attempts",
    "held",
    "workflow_id",
    "priority",
    "step_id",
    "backoff_ms",
    "backoff_max_ms",
    "errors",
    "agent_id",
    "attempt_base",
    "hb_ms",
    "timeout_ms",
    "s2s_ms",
    "progress_ms",
    "output_bytes",
    "tenant",
    "fairness_key",
    "fairness_weight",
    "fair_tag",
    "ckey",
    "climit",
    "cstrategy",
    "rate",
    "children",
    "request_id",
    "labels",
    "due_ms",
    "waiting",
)
"""What a transition loads (tasklib.lua load_task): never payload or result, which can be big."""


class PeekedTask(NamedTuple):
    """What peek.lua returns per pending task after its id (HMGET values, in this order)."""

    attempt: bytes | None
    labels: bytes | None
    payload: bytes | None
    workflow_id: bytes | None
    timeout_ms: bytes | None
    trace_id: bytes | None
    progress_ms: bytes | None
    hb_ms: bytes | None


def lua_tables() -> dict[str, tuple[str, ...]]:
    """Field name lists the scripts use (HMGET, HSET), each generated as
    `local NAME = {'field', ...}`."""
    return {
        "NEW_TASK": NewTask._fields,
        "TASK_LOADED_FIELDS": LOADED_FIELDS,
        "PEEKED_TASK": PeekedTask._fields,
    }


def lua_rows() -> dict[str, tuple[str, ...]]:
    """Row layouts the scripts read by index, each generated as `local NAME_WIDTH = n` and
    `local NAME_<FIELD> = i` (lua.lua_row)."""
    return {"NEW_TASK": NewTask._fields}
