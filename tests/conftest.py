"""Shared fixtures: a real redis-server on a free loopback port, settings, Redis clients."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis, create_redis
from tests.settings import StackSettings, stack_settings
from tests.up import refusing_addr


@pytest.fixture(scope="session", autouse=True)
def no_client_config(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Clients in tests (and the processes they start) never discover a client config that a
    `hivewire up` left in the checkout's .hivewire: their data directory is an empty one."""
    before = os.environ.get("HIVEWIRE_DATA_DIR")
    os.environ["HIVEWIRE_DATA_DIR"] = str(tmp_path_factory.mktemp("no-client-config"))
    yield
    if before is None:
        del os.environ["HIVEWIRE_DATA_DIR"]
    else:
        os.environ["HIVEWIRE_DATA_DIR"] = before


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One redis-server for the session (AOF off: tests want speed, not durability)."""
    server = EmbeddedRedis(0, tmp_path_factory.mktemp("redis"), appendonly=False)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def namespace() -> str:
    """A fresh key namespace per test, so tests never see each other's keys."""
    return uuid.uuid4().hex[:12]


@pytest.fixture
def settings(redis_server: EmbeddedRedis, namespace: str) -> StackSettings:
    return stack_settings(
        redis_url=redis_server.url,
        namespace=namespace,
        lease_seconds=3.0,
        retry_initial_backoff=0.05,
        retry_max_backoff=0.2,
    )


@pytest.fixture
def keys(settings: StackSettings) -> Keys:
    return Keys(settings.namespace)


@pytest.fixture
async def redis(settings: StackSettings) -> AsyncIterator[Redis]:
    client = create_redis(settings.redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def refused_addr() -> Iterator[str]:
    """A loopback address where nothing listens (connections refused) for the test."""
    with refusing_addr() as addr:
        yield addr


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
