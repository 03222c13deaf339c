"""Other clients of `hivewire up --demo`: `hivewire watch` for scripts, and the Node.js example."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from queue import Empty, Queue

import grpc
import pytest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from hivewire.client import Client
from tests.e2e.conftest import Stack
from tests.e2e.node_modules import NODE_DIR, ensure_node_modules

pytestmark = pytest.mark.e2e


def _lines(process: subprocess.Popen[str]) -> Queue[str]:
    out: Queue[str] = Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            out.put(line)

    threading.Thread(target=pump, daemon=True).start()
    return out


def _watch(stack: Stack, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "hivewire.cli", "watch", "--json", *args],
        env=stack.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )


async def test_watch_tails_filtered_events_as_json(stack: Stack) -> None:
    async with Client(stack.gateway) as client:
        marker = await client.submit("echo", {"marker": 1})
        await client.wait(marker.task_id, timeout=60)
        # Resume after the marker's first event: everything since is printed, filtered.
        cursor = ""
        async for event in client.events(task_id=marker.task_id, since_cursor="0-0"):
            cursor = event.cursor
            break
        succeeded = _watch(stack, "--type", "TASK_SUCCEEDED", "--since", cursor)
        by_task = _watch(stack, "--task", marker.task_id, "--since", "0-0")
        try:
            lines_ok, lines_task = _lines(succeeded), _lines(by_task)
            first = [json.loads(lines_task.get(timeout=60)) for _ in range(3)]
            assert [e["type"] for e in first] == ["TASK_SUBMITTED", "TASK_ASSIGNED",
                                                  "TASK_SUCCEEDED"]  # fmt: skip
            assert {e["task_id"] for e in first} == {marker.task_id}
            got = json.loads(lines_ok.get(timeout=60))
            assert (got["type"], got["task_id"]) == ("TASK_SUCCEEDED", marker.task_id)
            later = await client.submit("echo", {"later": 1})
            got = json.loads(lines_ok.get(timeout=60))
            assert (got["type"], got["task_id"]) == ("TASK_SUCCEEDED", later.task_id)
            with pytest.raises(Empty):
                lines_task.get(timeout=1)  # the other task's events are filtered out
        finally:
            for process in (succeeded, by_task):
                process.terminate()
                process.wait(30)


def test_node_client_submits_waits_and_streams(stack: Stack) -> None:
    ensure_node_modules()
    run = subprocess.run(
        ["node", "client.js", "--addr", stack.gateway, "--capability", "wordcount",
         "--payload", '{"text": "to be or not to be"}', "--timeout", "60"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr + run.stdout
    lines = [json.loads(line) for line in run.stdout.splitlines()]
    task_id = lines[0]["submitted"]
    assert len(task_id) == 32
    assert any("snapshot_complete" in line for line in lines)
    final = lines[-1]["task"]
    assert final["task_id"] == task_id
    assert final["state"] == "SUCCEEDED"
    assert json.loads(final["result"])["counts"] == {"to": 2, "be": 2, "or": 1, "not": 1}

    # Bad input comes back as a clear status, exit code 2.
    bad = subprocess.run(
        ["node", "client.js", "--addr", stack.gateway, "--capability", "no spaces allowed"],
        cwd=NODE_DIR, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert bad.stderr.startswith("error: INVALID_ARGUMENT")


async def test_reflection_describes_the_dashboard_streams(stack: Stack) -> None:
    """What grpcurl does: fetch the file defining GatewayService and read its methods."""
    async with grpc.aio.insecure_channel(stack.gateway) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(
            file_containing_symbol="hivewire.v1.GatewayService"
        )
        call = stub.ServerReflectionInfo(iter([request]), timeout=10)
        blobs = [b async for r in call for b in r.file_descriptor_response.file_descriptor_proto]
    files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in blobs]
    gateway = next(f for f in files if f.name == "hivewire/v1/gateway.proto")
    methods = {m.name: m for m in gateway.service[0].method}
    assert methods["StreamEvents"].server_streaming
    assert methods["WatchStats"].server_streaming
    assert methods["WatchStats"].output_type == ".hivewire.v1.WatchStatsResponse"
