"""Client SDK methods for dead letters (a mixin of Client)."""

from __future__ import annotations

from collections.abc import AsyncIterator

from hivewire.client._calls import GatewayCalls
from hivewire.client._loops import every_item
from hivewire.v1 import task_pb2


class DeadLetterMethods(GatewayCalls):
    """Dead-letter calls of the Client."""

    async def list_dead_letters(
        self, page_size: int = 100, page_token: str = ""
    ) -> tuple[list[task_pb2.DeadLetter], str]:
        """One page of dead letters, newest first, and the next page token ('' on the last)."""
        resp: task_pb2.ListDeadLettersResponse = await self._stub.ListDeadLetters(
            task_pb2.ListDeadLettersRequest(page_size=page_size, page_token=page_token),
            timeout=self.timeout,
        )
        return list(resp.dead_letters), resp.next_page_token

    def iter_dead_letters(self, page_size: int = 100) -> AsyncIterator[task_pb2.DeadLetter]:
        return every_item(lambda token: self.list_dead_letters(page_size, token))

    async def retry_dead_letter(self, dead_letter_id: str) -> task_pb2.Task:
        """Put a dead-lettered task back in its queue with a fresh attempt budget."""
        request = task_pb2.RetryDeadLetterRequest(dead_letter_id=dead_letter_id)
        return await self._task_call(self._stub.RetryDeadLetter, request)
