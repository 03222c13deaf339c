"""What a namespace holds in Redis, to show that a refused call wrote nothing."""

from __future__ import annotations

from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis

_SIZE = {
    b"string": "strlen",
    b"hash": "hlen",
    b"zset": "zcard",
    b"set": "scard",
    b"list": "llen",
    b"stream": "xlen",
}


async def store_snapshot(redis: Redis, keys: Keys) -> dict[str, int]:
    """Every key of the namespace with its size (entries, members, fields or bytes)."""
    names = sorted([k async for k in redis.scan_iter(match=keys.prefix + "*", count=1000)])
    async with redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.type(name)
        kinds = await pipe.execute()
    async with redis.pipeline(transaction=False) as pipe:
        for name, kind in zip(names, kinds, strict=True):
            getattr(pipe, _SIZE[kind])(name)
        sizes = await pipe.execute()
    return {n.decode(): int(s) for n, s in zip(names, sizes, strict=True)}
