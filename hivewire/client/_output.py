"""Client SDK method for a task's output (a mixin of Client): replayed, or followed live."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from hivewire.client._calls import GatewayCalls
from hivewire.core.backoff import backoff
from hivewire.v1 import stream_pb2, task_pb2

logger = logging.getLogger(__name__)


class OutputMethods(GatewayCalls):
    """Output calls of the Client."""

    async def task_output(
        self,
        task_id: str,
        *,
        follow: bool = False,
        after_cursor: str = "",
        resume: bool = True,
    ) -> AsyncIterator[stream_pb2.OutputChunk]:
        """The task's output chunks in order, from the start or after `after_cursor` (a chunk's
        `cursor`). With `follow`, new chunks arrive as the task writes them and the iterator
        ends once the task has finished and everything was sent; otherwise it ends with the
        output stored so far.

        With `resume` (the default) a stream the gateway drops (UNAVAILABLE: a restart) is
        opened again after the last chunk received, so no chunk is lost or repeated.
        """
        cursor = after_cursor
        delays = backoff(0.05, 5.0)
        while True:
            request = task_pb2.StreamTaskOutputRequest(
                task_id=task_id, after_cursor=cursor, follow=follow
            )
            # Following has no end known in advance; a replay gets the usual deadline.
            call = self._stub.StreamTaskOutput(request, timeout=None if follow else self.timeout)
            try:
                async for frame in call:
                    delays = backoff(0.05, 5.0)
                    for chunk in frame.chunks:
                        cursor = chunk.cursor
                        yield chunk
                return
            except grpc.aio.AioRpcError as exc:
                if not resume or exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                logger.info("output stream of %s dropped; resuming after %s", task_id, cursor)
            finally:
                call.cancel()
            await asyncio.sleep(next(delays))
