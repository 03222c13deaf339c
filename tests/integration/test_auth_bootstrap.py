"""`hivewire up --secure`'s token bootstrap against a real Redis and stack: the admin token it
writes to the client config works, the CLI creates and revokes tokens with it, a re-issue makes
the earlier admin token useless."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import grpc
import pytest

from hivewire.cli.up_auth import UpAuth
from hivewire.client import Client
from hivewire.core.tls import PLAINTEXT
from tests.integration.auth_helpers import SERVICE_TOKEN
from tests.integration.conftest import MakeStack
from tests.settings import StackSettings


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "hivewire.cli", *args]
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60, check=False)


async def test_bootstrap_gives_a_working_admin_token(
    make_stack: MakeStack, settings: StackSettings
) -> None:
    env = {
        **os.environ,
        "HIVEWIRE_REDIS_URL": settings.redis_url,
        "HIVEWIRE_NAMESPACE": settings.namespace,
    }
    auth = await UpAuth.prepare(True, env, [("worker-1", "echo,sleep")])
    assert auth.client_env()["HIVEWIRE_TOKEN"].startswith("hw_")
    assert auth.service_env()["HIVEWIRE_AUTH"] == "tokens"
    assert set(auth.agent_tokens) == {"worker-1"}
    stack = await make_stack(auth="tokens", service_token=SERVICE_TOKEN, auth_cache_seconds=0)
    cli_env = {
        **os.environ,
        "HIVEWIRE_GATEWAY_ADDR": stack.gateway_addr,
        **auth.client_env(),
    }
    made = await asyncio.to_thread(
        cli, "token", "create", "--role", "viewer", "--name", "dash", env=cli_env
    )
    assert made.returncode == 0, made.stderr
    viewer = made.stdout.strip().splitlines()[-1]
    async with Client(stack.gateway_addr, tls=PLAINTEXT, token=viewer) as client:
        await client.list_tasks()
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await client.submit("echo", {})
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = await asyncio.to_thread(cli, "token", "list", "--json", env=cli_env)
    assert '"agent-worker-1"' in listed.stdout and viewer not in listed.stdout
    dup = await asyncio.to_thread(
        cli, "token", "create", "--role", "viewer", "--name", "dash", env=cli_env
    )
    assert dup.returncode == 2 and "ALREADY_EXISTS" in dup.stderr
    # A second `up` re-issues the admin token: the first one stops working.
    again = await UpAuth.prepare(True, env, [])
    assert again.admin_token != auth.admin_token
    async with Client(stack.gateway_addr, tls=PLAINTEXT, token=auth.admin_token) as client:
        with pytest.raises(grpc.aio.AioRpcError) as stale:
            await client.list_tokens()
        assert stale.value.code() == grpc.StatusCode.UNAUTHENTICATED
