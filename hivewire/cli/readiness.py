"""How a parent finds and waits for a stack it started: address files, health, agents online."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hivewire.cli.embedded_redis import ANSWERS
from hivewire.core.addr_file import read_addr_file
from hivewire.core.tls import PLAINTEXT, TlsConfig, aio_channel
from hivewire.v1 import agent_pb2, gateway_pb2_grpc, registry_pb2, registry_pb2_grpc


def up_command(data_dir: Path, *extra: str, gateway_addr: str = "127.0.0.1:0") -> list[str]:
    """argv of `hivewire up` with Redis and every service on a port it binds itself (port 0);
    read the addresses with `running_addrs(data_dir)` once it is ready."""
    any_port = "127.0.0.1:0"
    return [
        sys.executable, "-m", "hivewire.cli", "up", *extra,
        "--redis-port", "0",
        "--data-dir", str(data_dir),
        "--gateway-addr", gateway_addr,
        "--registry-addr", any_port,
        "--coordinator-addr", any_port,
    ]  # fmt: skip


def running_addrs(data_dir: Path, endpoint: str = "") -> dict[str, str]:
    """Addresses of what `hivewire up --data-dir data_dir` runs now, by name (redis, gateway,
    registry, coordinator, hooks): what a script needs when it started them on port 0.
    With `endpoint` ("metrics"), the addresses of that endpoint of those that serve one."""
    run_dir = data_dir.resolve() / "run"
    found = {p.stem: read_addr_file(p, endpoint) for p in run_dir.glob("*.addr")}
    return {name: addr for name, addr in found.items() if addr}


async def wait_addr_file(path: Path, limit: float) -> str:
    """The address a service writes to `path` once serving."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while (addr := read_addr_file(path)) is None:
        if loop.time() >= deadline:
            raise TimeoutError(f"no address in {path} after {limit}s")
        await asyncio.sleep(0.05)
    return addr


async def wait_redis(port: int, limit: float) -> None:
    """Until the Redis on 127.0.0.1:`port` answers PING (it may be loading its AOF first); with
    ACL users that answer is NOAUTH, which says as much."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        with contextlib.suppress(OSError, TimeoutError):
            reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 1)
            try:
                writer.write(b"PING\r\n")
                if (await asyncio.wait_for(reader.readline(), 1)).startswith(ANSWERS):
                    return
            finally:
                writer.close()
        if loop.time() >= deadline:
            raise TimeoutError(f"redis on port {port} not answering PING after {limit}s")
        await asyncio.sleep(0.05)


async def _poll_rpc(
    addr: str,
    limit: float,
    ready: Callable[[grpc.aio.Channel], Awaitable[bool]],
    what: str,
    tls: TlsConfig,
    token: str = "",
) -> None:
    """Call `ready` on a channel to `addr` (TLS as `tls` says) every 0.1s until it is True (a
    failed RPC is a not yet); TimeoutError naming `what` after `limit` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    async with aio_channel(addr, tls, token=token) as channel:
        while True:
            with contextlib.suppress(grpc.aio.AioRpcError):
                if await ready(channel):
                    return
            if loop.time() >= deadline:
                raise TimeoutError(f"{what} after {limit}s")
            await asyncio.sleep(0.1)


async def wait_serving(addr: str, limit: float, tls: TlsConfig = PLAINTEXT) -> None:
    """Poll grpc.health.v1 Check at `addr` until SERVING; TimeoutError after `limit` seconds."""

    async def serving(channel: grpc.aio.Channel) -> bool:
        stub = health_pb2_grpc.HealthStub(channel)
        resp = await stub.Check(health_pb2.HealthCheckRequest(), timeout=1.0)
        return bool(resp.status == health_pb2.HealthCheckResponse.SERVING)

    await _poll_rpc(addr, limit, serving, f"{addr} not SERVING", tls)


async def wait_agents_online(
    gateway_addr: str, names: set[str], limit: float, tls: TlsConfig = PLAINTEXT, token: str = ""
) -> None:
    """Poll the gateway's ListAgents until agents with these names are ONLINE."""

    async def online(channel: grpc.aio.Channel) -> bool:
        stub = gateway_pb2_grpc.GatewayServiceStub(channel)
        reply = await stub.ListAgents(
            agent_pb2.ListAgentsRequest(state=agent_pb2.AGENT_STATE_ONLINE, page_size=1000),
            timeout=1.0,
        )
        return names <= {a.name for a in reply.agents}

    await _poll_rpc(gateway_addr, limit, online, f"agents {sorted(names)} not ONLINE", tls, token)


async def wait_agent_registered(
    registry_addr: str,
    name: str,
    since_ms: int,
    limit: float,
    tls: TlsConfig = PLAINTEXT,
    token: str = "",
) -> None:
    """Poll the registry's ListAgents until an agent called `name` that registered at or after
    `since_ms` (epoch ms) is ONLINE: a restarted agent, not the lease of the one it replaces."""

    async def registered(channel: grpc.aio.Channel) -> bool:
        stub = registry_pb2_grpc.RegistryServiceStub(channel)
        token = ""
        while True:
            request = agent_pb2.ListAgentsRequest(
                state=agent_pb2.AGENT_STATE_ONLINE, page_size=1000, page_token=token
            )
            reply = await stub.ListAgents(
                registry_pb2.RegistryServiceListAgentsRequest(request=request), timeout=1.0
            )
            page = reply.response
            if any(
                a.name == name and a.register_time.ToMilliseconds() >= since_ms for a in page.agents
            ):
                return True
            if not page.next_page_token:
                return False
            token = page.next_page_token

    await _poll_rpc(registry_addr, limit, registered, f"agent {name} not registered", tls, token)
