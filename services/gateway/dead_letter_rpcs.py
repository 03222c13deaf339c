"""ListDeadLetters and RetryDeadLetter of the GatewayService (a mixin of the servicer)."""

from __future__ import annotations

from typing import Any

from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, task_pb2
from hivewire_services.common.validation import check_page_size
from hivewire_services.gateway.events.hub import parse_stream_id
from hivewire_services.gateway.upstream import forward


class GatewayDeadLetterRpcs:
    """Checks at the edge, then forwards to the coordinator with the servicer's deadline."""

    _coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub
    _timeout: float

    async def ListDeadLetters(
        self, request: task_pb2.ListDeadLettersRequest, context: Any
    ) -> task_pb2.ListDeadLettersResponse:
        check_page_size(request.page_size)
        if request.page_token:
            parse_stream_id(request.page_token, "page_token")
        return await forward(
            self._coordinator.ListDeadLetters,
            coordinator_pb2.CoordinatorServiceListDeadLettersRequest(request=request),
            self._timeout,
        )

    async def RetryDeadLetter(
        self, request: task_pb2.RetryDeadLetterRequest, context: Any
    ) -> task_pb2.RetryDeadLetterResponse:
        parse_stream_id(request.dead_letter_id, "dead_letter_id")
        return await forward(
            self._coordinator.RetryDeadLetter,
            coordinator_pb2.CoordinatorServiceRetryDeadLetterRequest(request=request),
            self._timeout,
        )
