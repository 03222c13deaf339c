"""The gateway stub and deadline every Client call uses, and the calls that return one message."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hivewire.v1 import gateway_pb2_grpc, task_pb2, workflow_pb2

Method = Callable[..., Any]
"""A unary method of the gateway stub."""


class GatewayCalls:
    """Uses the Client's gateway stub and timeout (seconds, the deadline of every unary call)."""

    _stub: gateway_pb2_grpc.GatewayServiceStub
    timeout: float

    async def _task_call(self, method: Method, request: Any) -> task_pb2.Task:
        """Call `method` with the deadline; the response's task."""
        resp = await method(request, timeout=self.timeout)
        return resp.task  # type: ignore[no-any-return]

    async def _workflow_call(self, method: Method, request: Any) -> workflow_pb2.Workflow:
        """Call `method` with the deadline; the response's workflow."""
        resp = await method(request, timeout=self.timeout)
        return resp.workflow  # type: ignore[no-any-return]
