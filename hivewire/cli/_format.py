"""Text output of the `hivewire` command: error lines, tables, one-line events."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from hivewire.core.convert import agent_to_dict, event_to_dict, task_to_dict
from hivewire.v1 import agent_pb2, event_pb2, task_pb2

STATUS_DETAILS_KEY = "grpc-status-details-bin"


def format_rpc_error(exc: grpc.aio.AioRpcError) -> str:
    """`error: CODE: message (field: description, ...)` from a status and its rich details."""
    code = exc.code().name if exc.code() is not None else "UNKNOWN"
    message = exc.details() or ""
    fields: list[str] = []
    for key, value in exc.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        status = status_pb2.Status.FromString(value)
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                fields.extend(
                    f"field: {v.field}"
                    if v.description in ("", message)
                    else f"field: {v.field}: {v.description}"
                    for v in bad.field_violations
                )
    text = f"error: {code}: {message}"
    if fields:
        text += " (" + "; ".join(fields) + ")"
    return text


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else dumps(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
        for r in [headers, *rows]
    ]
    return "\n".join(lines)


def trace_id_line(trace_id: str) -> str:
    """The line (on stderr) that gives a task's or workflow's trace id: paste it into Jaeger."""
    return f"trace_id {trace_id}"


def task_line(task: task_pb2.Task) -> str:
    d = task_to_dict(task)
    tail = d["error"] if d["state"] in ("FAILED", "TIMED_OUT") else short(d["result"])
    return f"{d['task_id']} {d['state']} {tail if tail not in (None, 'null') else ''}".rstrip()


def progress_text(progress: dict[str, Any] | None) -> str:
    """`42% linking` (a progress dict of task_to_dict or event_to_dict); '' for none."""
    if not progress:
        return ""
    fraction = progress["fraction"]
    parts = [f"{fraction * 100:.0f}%" if fraction is not None else "", progress["message"]]
    return " ".join(p for p in parts if p)


def task_detail(task: task_pb2.Task) -> str:
    d = task_to_dict(task)
    d["progress"] = progress_text(d["progress"]) or None
    return "\n".join(f"{k + ':':<22}{'' if v is None else short(v, 200)}" for k, v in d.items())


def tasks_table(tasks: Sequence[task_pb2.Task]) -> str:
    rows = []
    for task in tasks:
        d = task_to_dict(task)
        rows.append(
            [d["task_id"], d["state"], d["capability"], str(d["attempt"]), d["agent_id"][:12],
             d["create_time"] or ""]
        )  # fmt: skip
    return table(["TASK_ID", "STATE", "CAPABILITY", "ATTEMPT", "AGENT", "CREATED"], rows)


def agents_table(agents: Sequence[agent_pb2.Agent]) -> str:
    rows = []
    for agent in agents:
        d = agent_to_dict(agent)
        rows.append(
            [d["agent_id"], d["name"], d["state"], f"{d['in_flight']}/{d['max_concurrency']}",
             ",".join(d["capabilities"])]
        )  # fmt: skip
    return table(["AGENT_ID", "NAME", "STATE", "LOAD", "CAPABILITIES"], rows)


def event_line(event: event_pb2.Event) -> str:
    d = event_to_dict(event)
    parts = [d["time"] or "-", d["type"]]
    for key in ("task_id", "agent_id", "capability", "workflow_id", "schedule"):
        if d[key]:
            parts.append(f"{key.removesuffix('_id')}={d[key]}")
    if d["attempt"]:
        parts.append(f"attempt={d['attempt']}")
    if d["task_state"]:
        parts.append(f"state={d['task_state']}")
    if d["message"]:
        parts.append(f"message={dumps(d['message'])}")
    if d["progress"] and d["progress"]["fraction"] is not None:
        parts.append(f"progress={progress_text({**d['progress'], 'message': ''})}")
    if d["output_chunks"]:
        parts.append(f"output={d['output_chunks']} cursor={d['output_cursor']}")
    return " ".join(parts)
