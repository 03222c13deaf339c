"""ListAgents order and retention: live agents first, OFFLINE ones after (when asked for) until
the registry deletes them; paging lists each agent once; `hivewire agents --all`."""

from __future__ import annotations

import asyncio
import json
import math

import grpc
import pytest
from typer.testing import CliRunner

from hivewire.cli import app
from hivewire.core.clock import now_ms
from hivewire.v1 import agent_pb2, registry_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from tests.integration.conftest import MakeStack
from tests.integration.registry_helpers import (
    deregister,
    every_page,
    list_agents,
    register,
    registry_stub,
)
from tests.waiting import eventually

OFFLINE = agent_pb2.AGENT_STATE_OFFLINE


def ids(page: agent_pb2.ListAgentsResponse) -> list[str]:
    return [a.agent_id for a in page.agents]


async def test_live_agents_come_first_and_pages_list_each_agent_once(
    make_stack: MakeStack, redis: Redis, keys: Keys
) -> None:
    # A long lease: the live agents here never heartbeat, yet must stay live on a slow machine;
    # the test runs the one lease sweep it needs itself.
    stack = await make_stack(coordinator=False, lease_seconds=120.0, lease_sweep_interval=3600.0)
    async with registry_stub(stack.settings) as stub:
        dead = [await register(stub, f"dead{i}") for i in range(20)]
        # Offline both ways: deregistered (deregister.lua), and lease expired (expire.lua).
        went_offline = [await deregister(stub, reply) for reply in dead[:10]]
        expiring = [reply.agent.agent_id for reply in dead[10:]]
        now = now_ms()
        await redis.zadd(keys.leases, dict.fromkeys(expiring, now - 1))
        expired = await stack.registry.store.expire_agents(expiring, now)
        assert expired == expiring
        went_offline += expired
        live = [await register(stub, f"live{i}") for i in range(3)]
        await stub.SendHeartbeat(
            registry_pb2.SendHeartbeatRequest(
                agent_id=live[2].agent.agent_id, agent_token=live[2].agent_token, draining=True
            ),
            timeout=5,
        )
        live_ids = [reply.agent.agent_id for reply in live]

        # By default only the live ones (DRAINING included), oldest registration first.
        page = await list_agents(stub, page_size=5)
        assert (ids(page), page.next_page_token) == (live_ids, "")
        assert [a.state for a in page.agents][2] == agent_pb2.AGENT_STATE_DRAINING
        for size in (1, 3):  # the last page ends exactly where the live agents do
            assert await every_page(stub, page_size=size) == (live_ids, 3 // size)

        # With the offline ones: the live ones first, then the most recently offline first.
        expected = live_ids + went_offline[::-1]
        page = await list_agents(stub, page_size=5, include_offline=True)
        assert ids(page) == expected[:5]
        for size in (1, 3, 4, 100):
            seen, pages = await every_page(stub, page_size=size, include_offline=True)
            assert seen == expected, f"page_size={size}"
            assert pages == math.ceil(len(expected) / size), f"page_size={size}"

        # An OFFLINE state filter lists them with or without include_offline; capability too.
        assert (await every_page(stub, page_size=7, state=OFFLINE))[0] == went_offline[::-1]
        seen, _ = await every_page(stub, page_size=2, capability="echo", include_offline=True)
        assert seen == expected

        # The gateway forwards the request as it is.
        agents, token = await stack.client.list_agents(page_size=5, include_offline=True)
        assert [a.agent_id for a in agents] == expected[:5] and token
        agents, token = await stack.client.list_agents(page_size=5)
        assert ([a.agent_id for a in agents], token) == (live_ids, "")


async def test_offline_agents_are_deleted_after_the_retention(
    make_stack: MakeStack, redis: Redis, keys: Keys
) -> None:
    stack = await make_stack(offline_agent_retention_seconds=3.0, lease_seconds=120.0)
    worker = await stack.agent("worker", {"echo": lambda ctx: ctx.payload})
    agent_id = worker.agent_id
    task = await stack.client.submit("echo", "hi")
    done = await stack.client.wait(task.task_id, timeout=30)
    assert done.agent_id == agent_id
    await worker.stop(grace=2.0)  # deregisters: OFFLINE

    async with registry_stub(stack.settings) as stub:
        request = registry_pb2.GetAgentRequest(agent_id=agent_id)
        # Within the retention: GetAgent and include_offline still show it, the default does not.
        assert (await stub.GetAgent(request, timeout=5)).agent.state == OFFLINE
        assert ids(await list_agents(stub, include_offline=True)) == [agent_id]
        assert ids(await list_agents(stub)) == []

        async def pruned() -> bool:
            try:
                await stub.GetAgent(request, timeout=5)
            except grpc.aio.AioRpcError as exc:
                return exc.code() == grpc.StatusCode.NOT_FOUND
            return False

        await eventually(pruned, message="Redis deleting the offline agent")
        # The next agent going offline prunes the index too (no listing, no sweeping loop).
        assert await redis.zscore(keys.offline_agents, agent_id) is not None
        other = await deregister(stub, await register(stub, "other"))
        assert await redis.zscore(keys.offline_agents, agent_id) is None
        assert await redis.zscore(keys.offline_agents, other) is not None
        assert ids(await list_agents(stub, include_offline=True)) == [other]

    # The task keeps the id of the agent that ran it.
    assert (await stack.client.get(task.task_id)).agent_id == agent_id


runner = CliRunner()


@pytest.mark.parametrize("as_json", [True, False])
async def test_cli_agents_lists_live_ones_and_all_with_all(
    make_stack: MakeStack, as_json: bool
) -> None:
    stack = await make_stack(coordinator=False, lease_seconds=120.0)
    async with registry_stub(stack.settings) as stub:
        dead = await deregister(stub, await register(stub, "dead"))
        live = (await register(stub, "live")).agent.agent_id

    async def cli(*args: str) -> str:
        argv = ["--addr", stack.gateway_addr, "agents", *args]
        if as_json:
            argv.append("--json")
        result = await asyncio.to_thread(runner.invoke, app, argv)
        assert result.exit_code == 0, result.output
        return result.stdout

    if as_json:
        listed = json.loads(await cli())
        assert [(a["agent_id"], a["state"]) for a in listed] == [(live, "ONLINE")]
        listed = json.loads(await cli("--all"))
        assert [(a["agent_id"], a["state"]) for a in listed] == [
            (live, "ONLINE"),
            (dead, "OFFLINE"),
        ]
    else:
        rows = (await cli()).splitlines()[1:]
        assert [row.split()[:3] for row in rows] == [[live, "live", "ONLINE"]]
        rows = (await cli("--all")).splitlines()[1:]
        assert [row.split()[:3] for row in rows] == [
            [live, "live", "ONLINE"],
            [dead, "dead", "OFFLINE"],
        ]
