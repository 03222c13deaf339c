"""Hypothesis strategies for any request message, built from its descriptor: every field may be
left out, set to an edge value, or to something malformed; fields whose name says what they
hold (ids, cursors, capabilities, payloads) also get values that look right, so requests get
past the first check and reach the deeper ones.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import descriptor, message_factory
from google.protobuf.message import Message
from hypothesis import strategies as st

from hivewire.v1 import agent_service_pb2, workflow_pb2

FD = descriptor.FieldDescriptor
TOP = 2**64 - 1
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
MAX_DEPTH = 3
SHORT = 6  # repeated fields and maps get at most this many entries


@dataclass(frozen=True)
class Pools:
    """Values that exist in the stack under test (ids of a real task, workflow, agent)."""

    task_ids: Sequence[str] = ()
    workflow_ids: Sequence[str] = ()
    agent_ids: Sequence[str] = ()
    capabilities: Sequence[str] = ("echo", "a", "b", "c")
    step_ids: Sequence[str] = ("a", "b", "c", "d")
    commands: Sequence[str] = ("diamond", "analyze-text")
    params: Sequence[str] = ("text", "chunks", "top", "l")
    extra: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)


def weighted(*choices: tuple[int, st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """One of the strategies, each chosen in proportion to its weight."""
    table = [strategy for weight, strategy in choices for _ in range(weight)]
    return st.integers(0, len(table) - 1).flatmap(lambda i: table[i])


def junk_text() -> st.SearchStrategy[str]:
    return st.one_of(
        st.text(max_size=40),
        st.sampled_from(["", " ", "\x00", "é", "../..", "*", "$", "{x}", "-1", "0", "٣"]),
        st.integers(1, 5000).map(lambda n: "x" * n),
    )


def hex_ids(pool: Sequence[str]) -> st.SearchStrategy[str]:
    choices = [st.text("0123456789abcdef", min_size=32, max_size=32), junk_text()]
    if pool:
        choices.insert(0, st.sampled_from(list(pool)))
    return st.one_of(*choices)


def stream_ids() -> st.SearchStrategy[str]:
    part = st.one_of(
        st.sampled_from([0, 1, TOP, TOP + 1, 10**20 - 1, 2**70]), st.integers(0, 2**66)
    )
    return weighted((3, st.tuples(part, part).map(lambda p: f"{p[0]}-{p[1]}")), (1, part.map(str)))


def json_documents() -> st.SearchStrategy[bytes]:
    """JSON objects and other values, deep nesting, and bytes that are not JSON."""
    leaves = st.one_of(
        st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=8)
    )
    values = st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4)
        ),
        max_leaves=20,
    )
    deep = st.integers(1, 200_000).map(lambda n: b"[" * n + b"]" * n)
    deep_objects = st.integers(1, 5000).map(lambda n: b'{"a":' * n + b"1" + b"}" * n)
    return st.one_of(
        st.dictionaries(st.text(max_size=8), values, max_size=5).map(
            lambda v: json.dumps(v).encode()
        ),
        values.map(lambda v: json.dumps(v).encode()),
        deep,
        deep_objects,
        st.binary(max_size=64),
        st.sampled_from([b"", b"{}", b'{"parents": 1}', b'{"item": 1}', b"[1]", b"\xff\xfe"]),
    )


def _string_field(name: str, pools: Pools) -> st.SearchStrategy[str]:
    if name in pools.extra:
        return pools.extra[name]
    if name in ("task_id", "running_task_ids", "task_ids"):
        return hex_ids(pools.task_ids)
    if name == "workflow_id":
        return hex_ids(pools.workflow_ids)
    if name in ("agent_id", "resume_agent_id"):
        return hex_ids(pools.agent_ids)
    if name in ("since_cursor", "after_cursor", "dead_letter_id", "page_token"):
        return weighted((3, stream_ids()), (1, junk_text()))
    if name in ("capability", "capabilities"):
        return st.one_of(st.sampled_from(list(pools.capabilities)), junk_text())
    if name in ("step_id", "depends_on", "map_over"):
        return st.one_of(st.sampled_from(list(pools.step_ids)), junk_text())
    if name == "name":
        return st.one_of(st.sampled_from(list(pools.commands)), junk_text())
    return junk_text()


def _scalar(fd: FD, pools: Pools) -> st.SearchStrategy[Any]:
    kind = fd.type
    if kind == FD.TYPE_STRING:
        return _string_field(fd.name, pools)
    if kind == FD.TYPE_BYTES:
        return json_documents()
    if kind == FD.TYPE_BOOL:
        return st.booleans()
    if kind == FD.TYPE_ENUM:
        known = [v.number for v in fd.enum_type.values]
        return st.one_of(st.sampled_from(known), st.integers(-3, 200))
    if kind in (FD.TYPE_FLOAT, FD.TYPE_DOUBLE):
        return st.floats(width=32 if kind == FD.TYPE_FLOAT else 64)
    low, high = INT64 if kind in (FD.TYPE_INT64, FD.TYPE_SINT64, FD.TYPE_SFIXED64) else INT32
    if kind in (FD.TYPE_UINT32, FD.TYPE_FIXED32):
        low, high = 0, 2**32 - 1
    if kind in (FD.TYPE_UINT64, FD.TYPE_FIXED64):
        low, high = 0, TOP
    edges = [v for v in (low, high, -1, 0, 1, 2, 100, 101, 1000, 1001, 10_001) if low <= v <= high]
    return st.one_of(st.integers(0, 100), st.sampled_from(edges), st.integers(low, high))


def _map_entries(fd: FD, pools: Pools) -> st.SearchStrategy[dict[Any, Any]]:
    entry = fd.message_type
    keys = st.one_of(st.sampled_from([*pools.params, "zone", "gpu/model"]), junk_text())
    values = _value(entry.fields_by_name["value"], pools, MAX_DEPTH)
    return st.dictionaries(keys, values, max_size=SHORT)


def _value(fd: FD, pools: Pools, depth: int) -> st.SearchStrategy[Any]:
    if fd.type == FD.TYPE_MESSAGE:
        return messages(fd.message_type, pools, depth + 1)
    return _scalar(fd, pools)


def _field(fd: FD, pools: Pools, depth: int) -> st.SearchStrategy[Any]:
    if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
        return _map_entries(fd, pools)
    if fd.is_repeated:
        return st.lists(_value(fd, pools, depth), max_size=SHORT)
    return _value(fd, pools, depth)


def _durations(desc: descriptor.Descriptor) -> st.SearchStrategy[Message]:
    cls = message_factory.GetMessageClass(desc)
    seconds = st.one_of(
        st.sampled_from([3600, 0, 1, -1, 30 * 24 * 3600, 31 * 24 * 3600, 315_576_000_000]),
        st.integers(-(2**63), 2**63 - 1),
    )
    nanos = st.one_of(
        st.sampled_from([0, 1, -1, 999_999_999, 10**9]), st.integers(INT32[0], INT32[1])
    )
    return st.builds(lambda s, n: cls(seconds=s, nanos=n), seconds, nanos)


def requests(desc: descriptor.Descriptor, pools: Pools) -> st.SearchStrategy[Message]:
    """Requests of type `desc`: any message, or (for the richest requests) a well-formed one,
    which reaches what happens after the checks."""
    shaped = WELL_FORMED.get(desc.full_name)
    kinds = [(2, one_field_off(desc, pools)), (1, messages(desc, pools))]
    return weighted(*kinds) if shaped is None else weighted((1, shaped(pools)), *kinds)


def _plausible(fd: FD, pools: Pools) -> Any:
    """A value that passes the checks of a top-level field, or None (its default does)."""
    firsts = {
        "task_id": pools.task_ids,
        "workflow_id": pools.workflow_ids,
        "capability": pools.capabilities,
    }
    values = firsts.get(fd.name)
    return values[0] if values and not fd.is_repeated else None


def one_field_off(desc: descriptor.Descriptor, pools: Pools) -> st.SearchStrategy[Message]:
    """A plausible request with one field drawn from its strategy: every edge value of each
    field meets otherwise valid requests, so it reaches the check it is meant to trip."""
    cls = message_factory.GetMessageClass(desc)
    base = {fd.name: v for fd in desc.fields if (v := _plausible(fd, pools)) is not None}
    if not desc.fields:
        return st.just(cls())
    return st.sampled_from(list(desc.fields)).flatmap(
        lambda fd: _field(fd, pools, 0).map(lambda v: build(cls, desc, {**base, fd.name: v}))
    )


@st.composite
def _workflows(draw: st.DrawFn, pools: Pools) -> Message:
    """DAGs with unique step ids, each depending on earlier steps, maybe a map step."""
    steps = []
    for i in range(draw(st.integers(1, 6))):
        deps = draw(st.lists(st.integers(0, i - 1), max_size=3, unique=True)) if i else []
        steps.append(
            workflow_pb2.WorkflowStepSpec(
                step_id=f"s{i}",
                capability=draw(st.sampled_from(list(pools.capabilities))),
                payload=draw(json_documents()),
                depends_on=[f"s{d}" for d in deps],
                map_over=f"s{deps[0]}" if deps and draw(st.booleans()) else "",
                priority=draw(st.integers(0, 100)),
            )
        )
    policy = draw(st.sampled_from([0, 1, 2, 7]))
    return workflow_pb2.SubmitWorkflowRequest(name="fuzz", steps=steps, failure_policy=policy)  # type: ignore[arg-type]


def _hellos(pools: Pools) -> st.SearchStrategy[Message]:
    """A first message that is a hello, mostly a valid one."""
    hello = st.builds(
        agent_service_pb2.AgentHello,
        name=st.one_of(st.just("fuzz"), junk_text()),
        capabilities=st.lists(st.sampled_from(list(pools.capabilities)), min_size=1, max_size=3),
        max_concurrency=st.one_of(st.integers(1, 16), st.integers(INT32[0], INT32[1])),
        resume_agent_id=st.one_of(st.just(""), hex_ids(pools.agent_ids)),
        running_task_ids=st.lists(hex_ids(pools.task_ids), max_size=2),
    )
    return hello.map(lambda h: agent_service_pb2.ConnectRequest(hello=h))


WELL_FORMED: dict[str, Callable[[Pools], st.SearchStrategy[Message]]] = {
    "hivewire.v1.SubmitWorkflowRequest": _workflows,
    "hivewire.v1.ConnectRequest": _hellos,
}


def messages(
    desc: descriptor.Descriptor, pools: Pools, depth: int = 0
) -> st.SearchStrategy[Message]:
    """Any message of type `desc`: each field left out or drawn from its strategy."""
    if desc.full_name in ("google.protobuf.Duration", "google.protobuf.Timestamp"):
        return _durations(desc)
    cls = message_factory.GetMessageClass(desc)
    if depth > MAX_DEPTH:
        return st.just(cls())
    optional = {fd.name: _field(fd, pools, depth) for fd in desc.fields}
    return st.fixed_dictionaries({}, optional=optional).map(lambda values: build(cls, desc, values))


def build(
    cls: Callable[[], Message], desc: descriptor.Descriptor, values: dict[str, Any]
) -> Message:
    msg = cls()
    for name, value in values.items():
        fd = desc.fields_by_name[name]
        target = getattr(msg, name) if fd.is_repeated or fd.type == FD.TYPE_MESSAGE else None
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            for k, v in value.items():
                if fd.message_type.fields_by_name["value"].type == FD.TYPE_MESSAGE:
                    target[k].CopyFrom(v)
                else:
                    target[k] = v
        elif fd.is_repeated:
            target.extend(value)
        elif fd.type == FD.TYPE_MESSAGE:
            target.CopyFrom(value)
        else:
            setattr(msg, name, value)
    return msg
