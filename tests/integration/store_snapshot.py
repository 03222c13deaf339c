"""What a namespace holds in Redis, to show that a refused call wrote nothing."""

from __future__ import annotations

import hashlib
from typing import Any

from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis


def _read(pipe: Any, name: bytes, kind: bytes) -> None:
    """Queue the commands that read a key's content (a stream: its length and last id, so
    a consumer group reading it does not count as a change)."""
    if kind == b"string":
        pipe.get(name)
    elif kind == b"hash":
        pipe.hgetall(name)
    elif kind == b"zset":
        pipe.zrange(name, 0, -1, withscores=True)
    elif kind == b"set":
        pipe.smembers(name)
    elif kind == b"list":
        pipe.lrange(name, 0, -1)
    else:
        pipe.xrevrange(name, count=1)
        pipe.xlen(name)


def _digest(value: Any) -> str:
    if isinstance(value, dict):
        value = sorted(value.items())
    elif isinstance(value, set):
        value = sorted(value)
    return hashlib.sha256(repr(value).encode()).hexdigest()[:16]


async def store_snapshot(redis: Redis, keys: Keys) -> dict[str, str]:
    """Every key of the namespace with a digest of its content."""
    names = sorted([k async for k in redis.scan_iter(match=keys.prefix + "*", count=1000)])
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.type(name)
        kinds = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for name, kind in zip(names, kinds, strict=True):
            _read(pipe, name, kind)
        replies = iter(await pipe.execute())
    out: dict[str, str] = {}
    for name, kind in zip(names, kinds, strict=True):
        value = [next(replies), next(replies)] if kind == b"stream" else next(replies)
        out[name.decode()] = f"{kind.decode()}:{_digest(value)}"
    return out
