"""Dramatiq with its Redis broker, defaults otherwise (one process per CPU, 8 threads each)."""

from __future__ import annotations

import os

import body
import dramatiq
from dramatiq.brokers.redis import RedisBroker

dramatiq.set_broker(RedisBroker(url=os.environ["BENCH_REDIS_URL"]))


@dramatiq.actor(max_retries=0)
def noop(t0: float) -> None:
    body.run(t0)


def send(t0: float) -> None:
    noop.send(t0)
