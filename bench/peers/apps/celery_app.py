"""Celery with its Redis broker, defaults otherwise (prefork pool, one child per CPU)."""

from __future__ import annotations

import os

import body
from celery import Celery

app = Celery("bench", broker=os.environ["BENCH_REDIS_URL"])
app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)


@app.task(name="noop")
def noop(t0: float) -> None:
    body.run(t0)


def send(t0: float) -> None:
    noop.delay(t0)
