"""The results consumer: reads agents' TaskResults through a consumer group and applies them."""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

from google.protobuf.message import DecodeError

from hivewire.core.clock import ms_of, now_ms
from hivewire.core.wire import RESULT_FIELD, RESULTS_GROUP
from hivewire.v1 import stream_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.streams import Entry, GroupOptions, StreamConsumer, ack_and_delete
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.dispatch_tracing import (
    end_result_spans,
    start_result_spans,
)
from hivewire_services.coordinator.tasks.progress_reports import progress_report
from hivewire_services.coordinator.tasks.result_bounds import bound_result

logger = logging.getLogger(__name__)


class ResultsConsumer(StreamConsumer):
    """Applies results in batches: one Lua call per batch applies, acks and deletes entries.

    PROGRESS reports (progress and output of running attempts) go to progress.lua, in one call
    per batch made before the call for the other results: an agent writes an attempt's last
    report before its result, so the report is applied while the attempt still runs.
    """

    name = "results consumer"

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        consumer: str,
        on_applied: Callable[[], None],
    ) -> None:
        # complete.lua acknowledges each result in the call that applies it.
        options = GroupOptions(
            keys.results,
            RESULTS_GROUP,
            consumer,
            batch=settings.results_batch,
            claim_idle=settings.results_claim_idle,
        )
        super().__init__(redis, options)
        self.keys = keys
        self._on_applied = on_applied
        self._complete = scripts.Complete(redis, keys, settings)
        self._progress = scripts.Progress(redis, keys, settings)
        self._max_result = settings.max_result_bytes
        self._max_error = settings.max_error_bytes
        # `foreign`: ignored because the agent_id is not the attempt's assignee (in `ignored` too).
        self.counts = {"applied": 0, "ignored": 0, "retried": 0, "failed": 0, "foreign": 0}
        self.progress_counts = {"applied": 0, "ignored": 0, "stored": 0, "dropped": 0, "foreign": 0}

    async def handle(self, entries: list[Entry]) -> None:
        body: list[scripts.CompleteRow] = []
        results: list[stream_pb2.TaskResult] = []
        reports: list[scripts.ProgressReport] = []
        now = now_ms()
        n = 0
        bad: list[bytes] = []
        for entry_id, fields in entries:
            try:
                result = stream_pb2.TaskResult.FromString(fields[RESULT_FIELD])
                self.keys.task(result.task_id)  # validates the id before it reaches a key
            except (KeyError, DecodeError, InvalidArgument) as exc:
                logger.warning("dropping malformed result entry %s: %s", entry_id, exc)
                bad.append(entry_id)
                continue
            if result.outcome == stream_pb2.TASK_OUTCOME_PROGRESS:
                reports.append(progress_report(entry_id, result, now))
                continue
            bound_result(result, self._max_result, self._max_error)
            n += 1
            results.append(result)
            body.append(
                scripts.CompleteRow(
                    entry_id,
                    result.task_id,
                    result.attempt,
                    result.attempt_token,
                    result.agent_id,
                    result.outcome,
                    result.result,
                    result.error,
                    _ms_or_empty(result, "start_time"),
                    _ms_or_empty(result, "end_time"),
                    random.random(),
                )
            )
        if bad:
            await ack_and_delete(self.redis, self.keys.results, RESULTS_GROUP, bad)
        if reports:
            reply = await self._progress(now, RESULTS_GROUP, reports)
            for name, value in zip(self.progress_counts, reply, strict=True):
                self.progress_counts[name] += value
        if not n:
            return
        spans = start_result_spans(results)  # not ended (so not exported) if the call fails
        reply = await self._complete(now, RESULTS_GROUP, body)
        end_result_spans(spans)
        *counts, pending = reply
        got = dict(zip(self.counts, counts, strict=True))
        for name, value in got.items():
            self.counts[name] += int(value)
        # Freed slots matter only to tasks waiting for one; a retry's due time sets the alarm.
        if pending or got["retried"]:
            self._on_applied()


def _ms_or_empty(result: stream_pb2.TaskResult, field: str) -> int | str:
    """A reported time in ms, '' when unset or invalid (an agent's bad clock fields are not
    worth losing its result over)."""
    ms = ms_of(result, field)
    return "" if ms is None else ms
