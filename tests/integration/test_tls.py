"""TLS and mTLS on real servers (port 0) with real handshakes: who gets in, who is refused."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.agent import TaskContext
from hivewire.cli.embedded_redis import EmbeddedRedis
from hivewire.cli.local_tls import LocalTls, ensure_local_tls
from hivewire.cli.readiness import wait_addr_file
from hivewire.client import Client
from hivewire.core.tls import PLAINTEXT, PlaintextBindError, TlsConfig, aio_channel
from hivewire.v1 import task_pb2
from hivewire_services.common.config import CommonSettings
from hivewire_services.common.server import GrpcServer, create_server
from tests.integration.conftest import MakeStack

OK = grpc.StatusCode.OK
UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


@pytest.fixture
def ca(tmp_path: Path) -> LocalTls:
    return ensure_local_tls(tmp_path / "tls")[0]


@pytest.fixture
def other_ca(tmp_path: Path) -> LocalTls:
    """A CA nobody here trusts, with certificates of its own."""
    return ensure_local_tls(tmp_path / "other")[0]


async def serve(listen: str, settings: CommonSettings) -> GrpcServer:
    """A real server with health only (no Redis), as every service builds it."""
    return await create_server(listen, lambda server: None, [], settings, watch_redis=False)


@pytest.fixture
async def servers() -> AsyncIterator[list[GrpcServer]]:
    started: list[GrpcServer] = []
    yield started
    for server in started:
        await server.stop(0)


async def check(addr: str, tls: TlsConfig) -> grpc.StatusCode:
    """OK if a health Check over a channel with `tls` gets SERVING, else the call's status."""
    async with aio_channel(addr, tls) as channel:
        try:
            reply = await health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), timeout=10
            )
        except grpc.aio.AioRpcError as exc:
            return exc.code()
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    return OK


def server_settings(ca: LocalTls, *, client_auth: str = "", **more: object) -> CommonSettings:
    server = ca.server()
    return CommonSettings(
        tls_cert=server.cert,
        tls_key=server.key,
        tls_ca=server.ca,
        tls_client_auth=client_auth,
        **more,  # type: ignore[arg-type]
    )


async def test_tls_handshake_needs_the_ca(
    ca: LocalTls, other_ca: LocalTls, servers: list[GrpcServer]
) -> None:
    server = await serve("127.0.0.1:0", server_settings(ca))
    servers.append(server)
    addr = f"127.0.0.1:{server.port}"
    assert await check(addr, TlsConfig(ca=str(ca.ca))) == OK
    assert await check(f"localhost:{server.port}", TlsConfig(ca=str(ca.ca))) == OK
    # No CA: the system's roots do not know the local CA.
    no_ca = TlsConfig(cert=ca.client().cert, key=ca.client().key)
    assert await check(addr, no_ca) == UNAVAILABLE
    assert await check(addr, TlsConfig(ca=str(other_ca.ca))) == UNAVAILABLE
    assert await check(addr, PLAINTEXT) == UNAVAILABLE


async def test_mtls_refuses_a_client_without_a_certificate_of_the_ca(
    ca: LocalTls, other_ca: LocalTls, servers: list[GrpcServer]
) -> None:
    server = await serve("127.0.0.1:0", server_settings(ca, client_auth="require"))
    servers.append(server)
    addr = f"127.0.0.1:{server.port}"
    assert await check(addr, ca.client()) == OK
    assert await check(addr, TlsConfig(ca=str(ca.ca))) == UNAVAILABLE
    stranger = other_ca.client()
    assert await check(addr, TlsConfig(stranger.cert, stranger.key, str(ca.ca))) == UNAVAILABLE
    assert await check(addr, PLAINTEXT) == UNAVAILABLE


async def test_plaintext_off_loopback_needs_insecure(
    ca: LocalTls, servers: list[GrpcServer]
) -> None:
    # Bound on every interface, but only ever dialled on 127.0.0.1.
    with pytest.raises(PlaintextBindError, match="HIVEWIRE_INSECURE=1"):
        await serve("0.0.0.0:0", CommonSettings())
    allowed = await serve("0.0.0.0:0", CommonSettings(insecure=True))
    servers.append(allowed)
    assert await check(f"127.0.0.1:{allowed.port}", PLAINTEXT) == OK
    with pytest.raises(PlaintextBindError, match=r"without authentication.*HIVEWIRE_AUTH=tokens"):
        await serve("0.0.0.0:0", server_settings(ca, client_auth="require"))
    secure = await serve(
        "0.0.0.0:0", dataclasses.replace(server_settings(ca, client_auth="require"), auth="tokens")
    )
    servers.append(secure)
    assert await check(f"127.0.0.1:{secure.port}", ca.client()) == OK


async def test_a_service_process_refuses_plaintext_off_loopback(
    tmp_path: Path, redis_server: EmbeddedRedis
) -> None:
    addr_file = tmp_path / "registry.addr"
    env = {
        **os.environ,
        "HIVEWIRE_REDIS_URL": redis_server.url,
        "HIVEWIRE_REGISTRY_LISTEN": "0.0.0.0:0",
        "HIVEWIRE_ADDR_FILE": str(addr_file),
    }
    argv = [sys.executable, "-m", "hivewire_services.registry"]
    refused = await asyncio.to_thread(
        subprocess.run, argv, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert refused.returncode == 2, refused.stderr
    assert "refusing to listen on 0.0.0.0:0 without TLS" in refused.stderr
    assert "HIVEWIRE_INSECURE=1" in refused.stderr and "Traceback" not in refused.stderr
    assert not addr_file.exists()

    process = await asyncio.create_subprocess_exec(
        *argv, env={**env, "HIVEWIRE_INSECURE": "1"}, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        addr = await wait_addr_file(addr_file, 60)
        assert addr.startswith("127.0.0.1:")
        assert await check(addr, PLAINTEXT) == OK
    finally:
        process.terminate()
        assert await process.wait() == 0


async def test_the_stack_over_mtls(ca: LocalTls, make_stack: MakeStack, transport: str) -> None:
    """Services dial each other with their certificate; agents and clients with theirs."""
    server = ca.server()
    stack = await make_stack(
        tls_cert=server.cert, tls_key=server.key, tls_ca=server.ca, tls_client_auth="require"
    )

    async def echo(ctx: TaskContext) -> bytes:
        return ctx.payload

    await stack.agent("tls-agent", {"echo": echo}, transport=transport, tls=ca.client())
    async with Client(stack.gateway_addr, tls=ca.client()) as client:
        task = await client.submit_and_wait("echo", b"over mTLS", timeout=30)
    assert task.state == task_pb2.TASK_STATE_SUCCEEDED
    assert task.result == b"over mTLS"
    async with Client(stack.gateway_addr, tls=PLAINTEXT) as plain:
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await plain.list_agents()
    assert refused.value.code() == UNAVAILABLE
