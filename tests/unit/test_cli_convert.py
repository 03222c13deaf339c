"""task_to_dict / agent_to_dict / event lines and payload encoding."""

from __future__ import annotations

import base64

from hivewire.cli._format import event_line
from hivewire.client import agent_to_dict, encode_payload, task_to_dict
from hivewire.v1 import agent_pb2, event_pb2, task_pb2


def test_task_to_dict_decodes_result_and_times() -> None:
    task = task_pb2.Task(
        task_id="a" * 32,
        capability="echo",
        state=task_pb2.TASK_STATE_SUCCEEDED,
        result=b'{"x": [1, 2]}',
        attempt=2,
        max_attempts=3,
        agent_id="b" * 32,
        priority=7,
        trace_id="c" * 32,
    )
    task.create_time.FromSeconds(1_700_000_000)
    d = task_to_dict(task)
    assert d["state"] == "SUCCEEDED"
    assert d["result"] == {"x": [1, 2]}
    assert d["create_time"] == "2023-11-14T22:13:20Z"
    assert d["assign_time"] is None and d["end_time"] is None
    assert (d["attempt"], d["max_attempts"], d["priority"]) == (2, 3, 7)
    assert d["agent_id"] == "b" * 32 and d["trace_id"] == "c" * 32


def test_result_falls_back_to_text_then_base64() -> None:
    assert task_to_dict(task_pb2.Task(result=b"plain words"))["result"] == "plain words"
    raw = b"\xff\xfe\x00"
    assert task_to_dict(task_pb2.Task(result=raw))["result"] == base64.b64encode(raw).decode()
    assert task_to_dict(task_pb2.Task())["result"] is None


def test_agent_to_dict() -> None:
    agent = agent_pb2.Agent(
        agent_id="d" * 32,
        name="demo-1",
        capabilities=["echo", "sleep"],
        max_concurrency=8,
        labels={"zone": "a"},
        state=agent_pb2.AGENT_STATE_ONLINE,
        in_flight=3,
    )
    d = agent_to_dict(agent)
    assert d["state"] == "ONLINE"
    assert d["capabilities"] == ["echo", "sleep"] and d["labels"] == {"zone": "a"}
    assert (d["max_concurrency"], d["in_flight"]) == (8, 3)


def test_payload_encoding() -> None:
    assert encode_payload(b"\x00raw") == b"\x00raw"
    assert encode_payload("text") == b'"text"'
    assert encode_payload({"a": 1}) == b'{"a":1}'
    assert encode_payload(None) == b"null"


def test_event_line() -> None:
    event = event_pb2.Event(
        type=event_pb2.EVENT_TYPE_TASK_FAILED,
        task_id="e" * 32,
        attempt=3,
        task_state=task_pb2.TASK_STATE_FAILED,
        message="boom",
    )
    line = event_line(event)
    assert line.startswith("- TASK_FAILED task=" + "e" * 32)
    assert "state=FAILED" in line and 'message="boom"' in line
