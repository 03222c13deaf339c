"""rediss:// end to end: a TLS-only redis-server that wants client certificates, the services
and a direct-Redis agent on it with their own users, and clients that cannot verify it refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from hivewire.core.redis_users import ADMIN_ROLE, url_as, user_name
from hivewire.v1 import task_pb2
from tests.integration.acl_stack import AclRedis, acl_redis, acl_stack
from tests.integration.tls_redis import TlsFiles, make_tls_files
from tests.settings import stack_settings
from tests.waiting import eventually

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def tls_redis(tmp_path: Path, namespace: str, tls_files: TlsFiles) -> Iterator[AclRedis]:
    with acl_redis(tmp_path, namespace, tls=tls_files) as server:
        yield server


async def test_services_and_a_direct_agent_work_over_tls_as_their_own_users(
    tls_redis: AclRedis, namespace: str
) -> None:
    assert tls_redis.server.url.startswith("rediss://")
    settings = stack_settings(
        redis_url=tls_redis.server.url, namespace=namespace, agent_redis_users=1
    )
    async with acl_stack(tls_redis, settings) as stack:
        agent = stack.agent("tls-agent", transport="redis")
        agent.add_handler("echo", lambda ctx: ctx.json())
        await agent.start()
        await eventually(
            lambda: (
                stack.coordinator.scheduler is not None
                and len(stack.coordinator.scheduler.cache.agents) == 1
            )
        )
        async with stack.client() as client:
            done = await client.submit_and_wait("echo", {"over": "tls"}, timeout=30)
        assert done.state == task_pb2.TASK_STATE_SUCCEEDED
        assert json.loads(done.result) == {"over": "tls"}
        admin = tls_redis.client()
        users = {c["user"] for c in await admin.client_list()}
        assert f"hivewire.{namespace}.coordinator" in users
        assert any(u.startswith(f"hivewire.{namespace}.agent.") for u in users)
        assert await admin.acl_log() == []
        await admin.aclose()


@pytest.mark.parametrize(
    ("url", "served"),
    [
        ("rediss://127.0.0.1:{port}/0?{query}", True),  # the control: CA and client certificate
        ("redis://127.0.0.1:{port}/0", False),  # no TLS at all
        ("rediss://127.0.0.1:{port}/0", False),  # the server's CA not trusted
        ("rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}", False),  # no client certificate
    ],
)
async def test_clients_that_cannot_verify_or_present_a_certificate_are_refused(
    tls_redis: AclRedis, tls_files: TlsFiles, url: str, served: bool
) -> None:
    target = url_as(
        url.format(port=tls_redis.server.port, ca=tls_files.ca, query=tls_files.query()),
        user_name(tls_redis.namespace, ADMIN_ROLE),
        tls_redis.passwords[ADMIN_ROLE],
    )
    client = aioredis.Redis.from_url(
        target, retry=Retry(NoBackoff(), 0), socket_connect_timeout=5, socket_timeout=5
    )
    try:
        if served:
            assert await client.ping()
        else:
            with pytest.raises((RedisConnectionError, OSError)):
                await client.ping()
    finally:
        await client.aclose()
