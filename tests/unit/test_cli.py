"""The `hivewire` command: help everywhere, argument checks, gRPC errors as one stderr line."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
import pytest
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status
from typer.testing import CliRunner

from hivewire.cli import app
from hivewire.v1 import gateway_pb2_grpc, task_pb2

runner = CliRunner()

COMMANDS = [
    [],
    ["up"],
    ["agent"],
    ["exec-agent"],
    ["submit"],
    ["task"],
    ["task", "get"],
    ["task", "cancel"],
    ["task", "output"],
    ["tasks"],
    ["agents"],
    ["watch"],
    ["dashboard"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "root")
def test_every_command_has_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output


class FakeGateway(gateway_pb2_grpc.GatewayServiceServicer):
    """Answers with fixed tasks, or with a rich INVALID_ARGUMENT status."""

    def GetTask(self, request: task_pb2.GetTaskRequest, context: Any) -> Any:  # noqa: N802
        if request.task_id == "bad":
            info = any_pb2.Any()
            info.Pack(
                error_details_pb2.BadRequest(
                    field_violations=[
                        error_details_pb2.BadRequest.FieldViolation(
                            field="task_id", description="must be 32 hex characters"
                        )
                    ]
                )
            )
            status = status_pb2.Status(
                code=code_pb2.INVALID_ARGUMENT, message="invalid task id", details=[info]
            )
            context.abort_with_status(rpc_status.to_status(status))
        task = task_pb2.Task(
            task_id=request.task_id,
            capability="echo",
            state=task_pb2.TASK_STATE_SUCCEEDED,
            result=b'{"ok":true}',
        )
        return task_pb2.GetTaskResponse(task=task)

    def SubmitTask(self, request: task_pb2.SubmitTaskRequest, context: Any) -> Any:  # noqa: N802
        task = task_pb2.Task(
            task_id="f" * 32,
            capability=request.capability,
            state=task_pb2.TASK_STATE_FAILED,
            payload=request.payload,
            error="RuntimeError: boom",
            required_labels=request.required_labels,
        )
        return task_pb2.SubmitTaskResponse(task=task)


@pytest.fixture
def gateway_addr() -> Iterator[str]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    gateway_pb2_grpc.add_GatewayServiceServicer_to_server(FakeGateway(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield f"127.0.0.1:{port}"
    server.stop(0)


def test_rpc_error_is_one_line_with_field_and_exit_2(gateway_addr: str) -> None:
    result = runner.invoke(app, ["--addr", gateway_addr, "task", "get", "bad"])
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "error: INVALID_ARGUMENT: invalid task id (field: task_id: must be 32 hex characters)"
    )
    assert "Traceback" not in result.output


def test_unreachable_gateway_is_unavailable(gateway_addr: str) -> None:
    from tests.up import refusing_addr

    with refusing_addr() as addr:
        result = runner.invoke(app, ["--addr", addr, "agents"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: UNAVAILABLE: ")


def test_task_get_json(gateway_addr: str) -> None:
    result = runner.invoke(app, ["--addr", gateway_addr, "task", "get", "a" * 32, "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["state"] == "SUCCEEDED" and body["result"] == {"ok": True}


def test_submit_wait_json_exits_1_when_task_failed(gateway_addr: str) -> None:
    args = ["--addr", gateway_addr, "submit", "echo", "--payload", '{"a": 1}']
    result = runner.invoke(app, [*args, "--label", "zone=a", "--wait", "--json"])
    assert result.exit_code == 1
    body = json.loads(result.stdout)
    assert body["state"] == "FAILED" and body["error"] == "RuntimeError: boom"
    assert body["payload"] == {"a": 1} and body["required_labels"] == {"zone": "a"}


@pytest.mark.parametrize(
    "args",
    [
        ["submit", "echo", "--payload", "{not json"],
        ["submit", "echo", "--label", "novalue"],
        ["tasks", "--state", "DONE"],
        ["watch", "--type", "NOPE"],
        ["agent", "no_colon_here"],
        ["exec-agent", "--capability", "x", "--", "no-such-program-here"],
        ["exec-agent", "--capability", "x", "--", "sh", "-c", "echo {a"],
        ["exec-agent", "--capability", "a,b", "--", "sh"],
        ["exec-agent", "--capability", "x", "--timeout", "0", "--", "sh"],
        ["exec-agent", "--capability", "x", "--cwd", "/", "--keep-workdir", "--", "sh"],
        ["exec-agent", "--capability", "x", "--permanent-exit-code", "0", "--", "sh"],
    ],
)
def test_bad_arguments_are_usage_errors(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_up_rejects_an_unknown_appendfsync_policy() -> None:
    result = runner.invoke(app, ["up", "--appendfsync", "sometimes"])
    assert result.exit_code == 2
    assert "--appendfsync" in result.output and "everysec" in result.output
