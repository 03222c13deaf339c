"""Child tasks from inside a handler: `await ctx.spawn(capability, payload)`.

The agent submits the child to the gateway's public GatewayService (on the agent's gateway
address, `HIVEWIRE_GATEWAY_ADDR`, with its TLS settings; one channel per agent, opened on the
first spawn), naming the parent task and the attempt token it got with the parent: the
coordinator accepts the child only while that attempt runs. The child joins the parent's
workflow and trace; the handler waits for it (GetTask with a capped backoff) and gets its
result. When the handler ends before its children (it failed, timed out or was cancelled),
the children still running are cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any

import grpc

from hivewire.core.backoff import backoff
from hivewire.core.defaults import channel_options
from hivewire.core.tls import PLAINTEXT, TlsConfig, aio_channel
from hivewire.core.tracing import client_interceptors
from hivewire.v1 import gateway_pb2_grpc, task_pb2

TERMINAL = frozenset(
    {
        task_pb2.TASK_STATE_SUCCEEDED,
        task_pb2.TASK_STATE_FAILED,
        task_pb2.TASK_STATE_CANCELLED,
        task_pb2.TASK_STATE_TIMED_OUT,
    }
)


class ChildTaskFailed(Exception):
    """A spawned child task did not succeed; `task` is the child as it ended."""

    def __init__(self, task: task_pb2.Task) -> None:
        state = task_pb2.TaskState.Name(task.state).removeprefix("TASK_STATE_")
        super().__init__(f"child task {task.task_id} ({task.capability}) {state}: {task.error}")
        self.task = task


def encode_payload(payload: object) -> bytes:
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    if payload is None:
        return b""
    return json.dumps(payload, separators=(",", ":")).encode()


def decode_result(raw: bytes) -> Any:
    """JSON when it parses, else text (bytes when not UTF-8)."""
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        try:
            return raw.decode()
        except UnicodeDecodeError:
            return raw


class Spawner:
    """Submits, awaits and cancels child tasks for one agent over one gateway channel."""

    def __init__(
        self,
        gateway_addr: str,
        tls: TlsConfig = PLAINTEXT,
        timeout: float = 5.0,
        *,
        token: str = "",
    ) -> None:
        self.gateway_addr = gateway_addr
        self.tls = tls
        self.timeout = timeout
        self.token = token  # the agent's token: agents may submit only children of their tasks
        self._channel: grpc.aio.Channel | None = None
        self._stub: gateway_pb2_grpc.GatewayServiceStub | None = None

    def _gateway(self) -> gateway_pb2_grpc.GatewayServiceStub:
        if self._stub is None:
            self._channel = aio_channel(
                self.gateway_addr,
                self.tls,
                options=channel_options(),
                interceptors=client_interceptors(),
                token=self.token,
            )
            self._stub = gateway_pb2_grpc.GatewayServiceStub(self._channel)
        return self._stub

    async def submit(
        self, parent_id: str, token: str, capability: str, payload: object, **fields: Any
    ) -> task_pb2.Task:
        request = task_pb2.SubmitTaskRequest(
            capability=capability,
            payload=encode_payload(payload),
            parent_task_id=parent_id,
            parent_attempt_token=token,
            **fields,
        )
        resp = await self._gateway().SubmitTask(request, timeout=self.timeout)
        return resp.task  # type: ignore[no-any-return]

    async def wait(self, task_id: str) -> task_pb2.Task:
        """The child once it ended (GetTask, backoff 10 ms up to 500 ms)."""
        delays = backoff(0.01, 0.5)
        while True:
            resp = await self._gateway().GetTask(
                task_pb2.GetTaskRequest(task_id=task_id), timeout=self.timeout
            )
            if resp.task.state in TERMINAL:
                return resp.task  # type: ignore[no-any-return]
            await asyncio.sleep(next(delays))

    async def cancel(self, task_ids: list[str]) -> None:
        """Cancel children (best effort: one that already ended is left alone)."""
        for task_id in task_ids:
            with contextlib.suppress(grpc.aio.AioRpcError):
                await self._gateway().CancelTask(
                    task_pb2.CancelTaskRequest(task_id=task_id), timeout=self.timeout
                )

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None


class Children:
    """The children one attempt spawned: spawn-and-wait, and cancel what is left at the end."""

    def __init__(self, spawner: Spawner, parent_id: str, token: str) -> None:
        self._spawner = spawner
        self._parent = parent_id
        self._token = token
        self._open: set[str] = set()

    async def spawn(self, capability: str, payload: object = None, **fields: Any) -> Any:
        task = await self._spawner.submit(self._parent, self._token, capability, payload, **fields)
        self._open.add(task.task_id)
        # Cancelled or failing here, the child stays open: the attempt's end cancels it.
        done = await self._spawner.wait(task.task_id)
        self._open.discard(task.task_id)
        if done.state != task_pb2.TASK_STATE_SUCCEEDED:
            raise ChildTaskFailed(done)
        return decode_result(done.result)

    async def cancel_open(self) -> None:
        """Cancel every child that has not ended (the parent's attempt is over)."""
        if self._open:
            left, self._open = sorted(self._open), set()
            await asyncio.shield(self._spawner.cancel(left))
