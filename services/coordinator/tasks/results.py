"""The results consumer: reads agents' TaskResults through a consumer group and applies them."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from pathlib import Path
from typing import cast

from google.protobuf.message import DecodeError
from redis.exceptions import ResponseError

from hivewire.core.wire import RESULT_FIELD, RESULTS_GROUP
from hivewire.v1 import stream_pb2
from hivewire_services.common.clock import now_ms
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.loops import Backoff
from hivewire_services.common.redis import Redis
from hivewire_services.coordinator.config import CoordinatorSettings
from hivewire_services.coordinator.tasks import scripts
from hivewire_services.coordinator.tasks.dispatch_tracing import (
    end_result_spans,
    start_result_spans,
)

logger = logging.getLogger(__name__)

_HERE = Path(__file__).parent
# Entries another coordinator read but did not apply for HIVEWIRE_RESULTS_CLAIM_IDLE seconds
# are taken over, checked every half of that (at most every CLAIM_EVERY_S).
CLAIM_EVERY_S = 10.0
Entry = tuple[bytes, dict[bytes, bytes]]


class ResultsConsumer:
    """Applies results in batches: one Lua call per batch applies, acks and deletes entries."""

    def __init__(
        self,
        redis: Redis,
        keys: Keys,
        settings: CoordinatorSettings,
        consumer: str,
        on_applied: Callable[[], None],
    ) -> None:
        self.redis = redis
        self.keys = keys
        self.settings = settings
        self.consumer = consumer
        self._on_applied = on_applied
        self._complete = scripts.Complete(redis, keys, settings)
        self.counts = {"applied": 0, "ignored": 0, "retried": 0, "failed": 0}

    async def ensure_group(self) -> None:
        try:
            await self.redis.xgroup_create(self.keys.results, RESULTS_GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def run(self) -> None:
        backoff = Backoff()
        last_claim = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                await self.ensure_group()
                while True:
                    every = min(CLAIM_EVERY_S, self.settings.results_claim_idle / 2)
                    if loop.time() - last_claim > every:
                        last_claim = loop.time()
                        await self.claim_abandoned()
                    reply = await self.redis.xreadgroup(
                        RESULTS_GROUP,
                        self.consumer,
                        {self.keys.results: ">"},
                        count=self.settings.results_batch,
                        block=1000,
                    )
                    batches = cast(list[tuple[bytes, list[Entry]]] | None, reply)
                    for _, entries in batches or []:
                        await self.apply(entries)
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                await backoff.failed("results consumer", exc)

    async def claim_abandoned(self) -> None:
        """Take over entries a dead coordinator read and never applied (XAUTOCLAIM)."""
        start = "0-0"
        while True:
            reply = await self.redis.xautoclaim(
                self.keys.results,
                RESULTS_GROUP,
                self.consumer,
                int(self.settings.results_claim_idle * 1000),
                start_id=start,
                count=self.settings.results_batch,
            )
            start, entries = reply[0], cast(list[Entry], reply[1])
            # reply[2] lists ids already deleted from the stream: nothing left to apply.
            if entries:
                await self.apply(entries)
            if start in (b"0-0", "0-0"):
                return

    async def apply(self, entries: list[Entry]) -> None:
        body: list[scripts.CompleteRow] = []
        results: list[stream_pb2.TaskResult] = []
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
                    result.start_time.ToMilliseconds() if result.HasField("start_time") else "",
                    result.end_time.ToMilliseconds() if result.HasField("end_time") else "",
                    random.random(),
                )
            )
        if bad:
            await self.redis.xack(self.keys.results, RESULTS_GROUP, *bad)
            await self.redis.xdel(self.keys.results, *bad)
        if not n:
            return
        spans = start_result_spans(results)  # not ended (so not exported) if the call fails
        reply = await self._complete(now_ms(), RESULTS_GROUP, body)
        end_result_spans(spans)
        for name, value in zip(self.counts, reply, strict=True):
            self.counts[name] += int(value)
        self._on_applied()
