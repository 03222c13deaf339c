"""Hivewire against the task queues its users compare it with, same machine, same run.

Each system gets a private redis-server, one worker (or agent) at its default concurrency, one
producer and the same task body (one Redis INCR; in the latency phase one RPUSH of the delay
from the enqueue call to the task's start). The peers run from their own virtual environment
(bench/peers/env.py installs them there), so nothing of theirs touches the project's venv.
"""
