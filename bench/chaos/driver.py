"""The chaos client: submits N tasks in batches with stable request ids, retrying refused
batches (the coordinator may be dead, Redis down) until acknowledged, and writes every
acknowledged task to the ledger the checker reads."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import grpc

from bench.chaos.agent import CAPABILITY
from bench.chaos.checker import Accepted
from hivewire.core.backoff import backoff_delay
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, task_pb2

logger = logging.getLogger(__name__)

RETRY_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.CANCELLED,
    }
)
CALL_TIMEOUT = 15.0
POISON_MAX_ATTEMPTS = 3
# Enough that chaos alone (reclaims, start-to-close losses) never exhausts a healthy task.
HEALTHY_MAX_ATTEMPTS = 25


def kind_of(n: int, flaky_every: int, poison_every: int) -> str:
    if poison_every and n % poison_every == poison_every - 1:
        return "poison"
    if flaky_every and n % flaky_every == flaky_every // 2:
        return "flaky"
    return "ok"


@dataclass
class Driver:
    addrs: list[str]
    """Coordinators; a refused batch is retried on the next one."""
    ledger: Path
    run_id: str
    tasks: int
    batch: int = 200
    rate: float = 0.0
    """Tasks submitted per second (0: as fast as acknowledged)."""
    work_ms: int = 5
    flaky_every: int = 20
    poison_every: int = 100
    submitters: int = 2
    max_outstanding: int = 0
    """Submit no further while this many accepted tasks have not ended (0: no bound)."""
    ended: Callable[[], int] = lambda: 0
    retried_batches: int = 0

    def __post_init__(self) -> None:
        self.accepted: list[Accepted] = []

    def request(self, n: int) -> task_pb2.SubmitTaskRequest:
        kind = kind_of(n, self.flaky_every, self.poison_every)
        payload = {"n": n, "kind": kind, "work_ms": self.work_ms}
        return task_pb2.SubmitTaskRequest(
            capability=CAPABILITY,
            payload=json.dumps(payload).encode(),
            max_attempts=POISON_MAX_ATTEMPTS if kind == "poison" else HEALTHY_MAX_ATTEMPTS,
            request_id=f"{self.run_id}-{n}",
        )

    async def run(self) -> None:
        """Submit everything; returns once every batch is acknowledged."""
        starts = asyncio.Queue[int]()
        for start in range(0, self.tasks, self.batch):
            starts.put_nowait(start)
        t0 = time.monotonic()
        channels = [grpc.aio.insecure_channel(addr) for addr in self.addrs]
        stubs = [coordinator_pb2_grpc.CoordinatorServiceStub(c) for c in channels]
        try:
            with self.ledger.open("a") as out:
                await asyncio.gather(
                    *(self._submitter(stubs, i, starts, out, t0) for i in range(self.submitters))
                )
        finally:
            for channel in channels:
                await channel.close()

    async def _submitter(
        self,
        stubs: list[coordinator_pb2_grpc.CoordinatorServiceStub],
        which: int,
        starts: asyncio.Queue[int],
        out: TextIO,
        t0: float,
    ) -> None:
        while not starts.empty():
            start = starts.get_nowait()
            if self.rate:
                await asyncio.sleep(max(0.0, t0 + start / self.rate - time.monotonic()))
            await self._room()
            numbers = list(range(start, min(self.tasks, start + self.batch)))
            tasks, which = await self._submit(stubs, which, [self.request(n) for n in numbers])
            lines = []
            for n, task in zip(numbers, tasks, strict=True):
                a = Accepted(f"{self.run_id}-{n}", task.task_id, self._kind(n), n)
                self.accepted.append(a)
                lines.append(a.to_json() + "\n")
            out.writelines(lines)
            out.flush()

    async def _room(self) -> None:
        """Wait until fewer than max_outstanding accepted tasks are unfinished."""
        while True:
            if not self.max_outstanding:
                return
            if len(self.accepted) - self.ended() < self.max_outstanding:
                return
            await asyncio.sleep(0.05)

    def _kind(self, n: int) -> str:
        return kind_of(n, self.flaky_every, self.poison_every)

    async def _submit(
        self,
        stubs: list[coordinator_pb2_grpc.CoordinatorServiceStub],
        which: int,
        reqs: list[task_pb2.SubmitTaskRequest],
    ) -> tuple[list[task_pb2.Task], int]:
        """Submit one batch until acknowledged; returns its tasks and the stub that took it."""
        failures = 0
        while True:
            stub = stubs[which % len(stubs)]
            try:
                resp = await stub.SubmitTasks(
                    coordinator_pb2.CoordinatorServiceSubmitTasksRequest(
                        request=task_pb2.SubmitTasksRequest(tasks=reqs)
                    ),
                    timeout=CALL_TIMEOUT,
                )
                return list(resp.response.tasks), which
            except grpc.aio.AioRpcError as exc:
                if exc.code() not in RETRY_CODES:
                    raise
                failures += 1
                which += 1
                self.retried_batches += 1
                await asyncio.sleep(backoff_delay(failures, 0.1, 2.0))
