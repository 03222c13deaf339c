"""The gateway stub and deadline every Client call uses, and the calls that return one message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hivewire.client._retry import with_retry_info
from hivewire.v1 import gateway_pb2_grpc, task_pb2, workflow_pb2

Method = Callable[..., Any]
"""A unary method of the gateway stub."""


class GatewayCalls:
    """Uses the Client's gateway stub and timeout (seconds, the deadline of every unary call)."""

    _stub: gateway_pb2_grpc.GatewayServiceStub
    timeout: float

    async def _read(self, method: Method, request: Any) -> Any:
        """Call an idempotent (read) `method` with the deadline; a RESOURCE_EXHAUSTED carrying
        RetryInfo (the server shedding load, a rate limit) is tried again after the delay it
        asks for, capped (hivewire.client._retry)."""
        return await with_retry_info(lambda: method(request, timeout=self.timeout))

    async def _task_call(
        self, method: Method, request: Any, *, idempotent: bool = False
    ) -> task_pb2.Task:
        """Call `method` with the deadline (retried as `_read` when `idempotent`); the
        response's task."""
        if idempotent:
            resp = await self._read(method, request)
        else:
            resp = await method(request, timeout=self.timeout)
        return resp.task  # type: ignore[no-any-return]

    async def _workflow_call(
        self, method: Method, request: Any, *, idempotent: bool = False
    ) -> workflow_pb2.Workflow:
        """Call `method` with the deadline (retried as `_read` when `idempotent`); the
        response's workflow."""
        if idempotent:
            resp = await self._read(method, request)
        else:
            resp = await method(request, timeout=self.timeout)
        return resp.workflow  # type: ignore[no-any-return]
