"""ListDeadLetters and RetryDeadLetter of the CoordinatorService (a mixin of the servicer)."""

from __future__ import annotations

from typing import Any

from hivewire.v1 import coordinator_pb2, task_pb2
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks.dead_letters import DeadLetters
from hivewire_services.coordinator.tasks.store import TaskStore


class DeadLetterRpcs:
    """Uses the servicer's `store` and `settings`."""

    store: TaskStore
    settings: CoordinatorSettings
    _dead_letters_obj: DeadLetters | None = None

    @property
    def dead_letters(self) -> DeadLetters:
        if self._dead_letters_obj is None:
            s = self.store
            self._dead_letters_obj = DeadLetters(s, s.redis, s.keys, self.settings)
        return self._dead_letters_obj

    async def ListDeadLetters(
        self, request: coordinator_pb2.CoordinatorServiceListDeadLettersRequest, context: Any
    ) -> coordinator_pb2.CoordinatorServiceListDeadLettersResponse:
        req = request.request
        page = await self.dead_letters.list(page_size=req.page_size, page_token=req.page_token)
        return coordinator_pb2.CoordinatorServiceListDeadLettersResponse(
            response=task_pb2.ListDeadLettersResponse(
                dead_letters=page.dead_letters, next_page_token=page.next_page_token
            )
        )

    async def RetryDeadLetter(
        self, request: coordinator_pb2.CoordinatorServiceRetryDeadLetterRequest, context: Any
    ) -> coordinator_pb2.CoordinatorServiceRetryDeadLetterResponse:
        task = await self.dead_letters.retry(request.request.dead_letter_id)
        wake = getattr(self, "_on_submit", None)
        if wake is not None:
            wake()
        return coordinator_pb2.CoordinatorServiceRetryDeadLetterResponse(
            response=task_pb2.RetryDeadLetterResponse(task=task)
        )
