"""Event streams that survive disconnects: resume from the last cursor with capped backoff.

A stream that ends with UNAVAILABLE (gateway restarting, network), RESOURCE_EXHAUSTED for a
slow subscriber, or an unexpected clean end is opened again after the last cursor seen (an
event, a heartbeat, the snapshot's end, or the cursor the gateway reported in the error's
ErrorInfo), so the caller sees every event exactly once across reconnects.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import grpc
from google.rpc import error_details_pb2, status_pb2

from hivewire.client._retry import retry_delay
from hivewire.core.backoff import backoff
from hivewire.v1 import event_pb2

logger = logging.getLogger(__name__)

STATUS_DETAILS_KEY = "grpc-status-details-bin"
DEFAULT_MAX_BATCH = 256
RESUMABLE = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.DEADLINE_EXCEEDED,
    }
)


def error_cursor(exc: grpc.aio.AioRpcError) -> str:
    """The `cursor` the gateway put in the ErrorInfo metadata of a stream's status, or ''."""
    for key, value in exc.trailing_metadata() or ():
        if key != STATUS_DETAILS_KEY or not isinstance(value, bytes):
            continue
        for detail in status_pb2.Status.FromString(value).details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                return str(info.metadata.get("cursor", ""))
    return ""


def frame_cursor(frame: event_pb2.StreamEventsResponse) -> str:
    """The resume point a frame moves the stream to ('' when it does not move it)."""
    kind = frame.WhichOneof("frame")
    if kind == "event":
        return "" if frame.event.snapshot else frame.event.cursor
    if kind == "heartbeat":
        return frame.heartbeat.cursor
    if kind == "snapshot_complete":
        return frame.snapshot_complete.cursor
    if kind == "events" and frame.events.events:
        return frame.events.events[-1].cursor
    return ""


def _singles(
    frame: event_pb2.StreamEventsResponse,
) -> list[event_pb2.StreamEventsResponse]:
    if frame.WhichOneof("frame") != "events":
        return [frame]
    return [event_pb2.StreamEventsResponse(event=e) for e in frame.events.events]


class EventStream:
    """Iterate frames of StreamEvents; `cursor` is where a new stream would resume.

    The stream asks for batches (`max_batch`, default 256) so a consumer that falls behind
    catches up in fewer, larger messages; batches are handed on as single `event` frames.
    """

    def __init__(
        self,
        stub: Any,
        request: event_pb2.StreamEventsRequest,
        *,
        resume: bool = True,
        on_disconnect: Callable[[grpc.aio.AioRpcError | None], None] | None = None,
        max_backoff: float = 5.0,
    ) -> None:
        self._stub = stub
        self._request = request
        self.cursor = request.since_cursor
        self.resume = resume
        self.reconnects = 0
        self._on_disconnect = on_disconnect
        self._max_backoff = max_backoff

    async def __aiter__(self) -> AsyncIterator[event_pb2.StreamEventsResponse]:
        delays = backoff(0.05, self._max_backoff)
        snapshot_done = False
        while True:
            request = event_pb2.StreamEventsRequest()
            request.CopyFrom(self._request)
            request.since_cursor = self.cursor
            # A snapshot is wanted once; after that the cursor carries the state forward.
            request.include_snapshot = self._request.include_snapshot and not snapshot_done
            if not request.max_batch:
                request.max_batch = DEFAULT_MAX_BATCH
            call = self._stub.StreamEvents(request)
            error: grpc.aio.AioRpcError | None = None
            try:
                async for frame in call:
                    delays = backoff(0.05, self._max_backoff)
                    if frame.WhichOneof("frame") == "snapshot_complete":
                        snapshot_done = True
                    # A batch is handed on one event at a time, the cursor moving with each.
                    for single in _singles(frame):
                        cursor = frame_cursor(single)
                        if cursor:
                            self.cursor = cursor
                        yield single
            except grpc.aio.AioRpcError as exc:
                if not self.resume or exc.code() not in RESUMABLE:
                    raise
                error = exc
                self.cursor = self.cursor or error_cursor(exc)
            finally:
                call.cancel()
            if not self.resume:
                return
            self.reconnects += 1
            if self._on_disconnect is not None:
                self._on_disconnect(error)
            logger.info(
                "event stream ended (%s); resuming after %s",
                error.code().name if error else "closed",
                self.cursor or "(start)",
            )
            # A server shedding load says how long to wait (RetryInfo); never past the cap.
            asked = retry_delay(error) if error is not None else None
            await asyncio.sleep(max(next(delays), min(asked or 0.0, self._max_backoff)))
