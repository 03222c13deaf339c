"""The hooks runner in-process against real Redis, the real registry and coordinator, agents."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from hivewire.agent import NonRetryableError, TaskContext
from hivewire.v1 import event_pb2, registry_pb2, registry_pb2_grpc, task_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.common.server import create_channel
from hivewire_services.hooks.payload import TIMESTAMP_HEADER, verify
from hivewire_services.hooks.server import HooksServer
from tests.integration.hooks_helpers import (
    HOOK_TYPES,
    SECRET,
    Receiver,
    config_of,
    events_of,
    hook_settings,
    hooks_pending,
    receiving,
)
from tests.integration.stack import running_stack
from tests.settings import StackSettings
from tests.waiting import eventually

# A command hook: appends {"stdin": <the JSON it got>, "env": {HIVEWIRE_*}} as one line to argv[1].
RECORDER = (
    "import json, os, sys\n"
    "doc = json.load(sys.stdin)\n"
    "env = {k: v for k, v in os.environ.items() if k.startswith('HIVEWIRE_')}\n"
    "open(sys.argv[1], 'a').write(json.dumps({'stdin': doc, 'env': env}) + '\\n')\n"
)


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


async def test_command_hook_writes_a_file_for_a_real_task_failure(
    settings: StackSettings, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    out = tmp_path / "failures.jsonl"
    config = config_of(
        f"""
hooks:
  - name: record-failure
    on: task.failed
    filter: {{capability: boom}}
    command:
      argv: [{sys.executable}, -c, {json.dumps(RECORDER)}, {out}]
      timeout: 30
"""
    )
    hsettings = hook_settings(settings)
    async with (
        running_stack(hsettings, gateway=False) as stack,
        HooksServer(hsettings.hooks(), config) as runner,
    ):
        agent = stack.new_agent("worker", max_concurrency=4)

        @agent.handler("boom")
        async def boom(ctx: TaskContext) -> None:
            raise NonRetryableError("kaput")

        @agent.handler("ok")
        async def ok(ctx: TaskContext) -> str:
            return "fine"

        async with agent:
            [failing] = await stack.submit("boom", payload=b"{}")
            fine = await stack.submit("ok", 3)
            await eventually(
                lambda: _all_done(stack, [failing.task_id, *(t.task_id for t in fine)])
            )
            [done] = await eventually(lambda: events_of(redis, keys, *HOOK_TYPES))

        [record] = lines(out)
        doc, env = record["stdin"], record["env"]
        assert doc["event_type"] == "task.failed" and doc["hook"] == "record-failure"
        assert doc["event"]["task_id"] == failing.task_id
        assert doc["event"]["capability"] == "boom"
        assert "kaput" in doc["event"]["message"]
        assert doc["attempt"] == 1 and len(doc["delivery_id"]) == 32
        assert env["HIVEWIRE_TASK_ID"] == failing.task_id
        assert env["HIVEWIRE_EVENT_TYPE"] == "task.failed"
        assert env["HIVEWIRE_HOOK_NAME"] == "record-failure"
        assert env["HIVEWIRE_DELIVERY_ID"] == doc["delivery_id"]
        # The outcome is an event about the same task, and the hook did not react to it.
        assert done.type == event_pb2.EVENT_TYPE_HOOK_SUCCEEDED
        assert (done.task_id, done.capability, done.attempt) == (failing.task_id, "boom", 1)
        assert done.message == "record-failure: exit 0"
        await eventually(lambda: _settled(redis, keys, runner))
        assert len(await events_of(redis, keys, *HOOK_TYPES)) == 1
        assert len(lines(out)) == 1


async def _all_done(stack: Any, task_ids: list[str]) -> bool:
    terminal = {task_pb2.TASK_STATE_SUCCEEDED, task_pb2.TASK_STATE_FAILED}
    return all(s in terminal for s in await stack.states(task_ids))


async def _settled(redis: Redis, keys: Keys, runner: HooksServer) -> bool:
    """Every event read, every delivery settled, nothing left pending in the hooks group."""
    backlog = await runner.store.backlog()
    return backlog == (0, 0) and await hooks_pending(redis, keys) == 0


async def test_webhook_is_signed_and_filtered_by_agent_labels(
    settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    """agent.offline from the real registry's lease sweeper; only the eu agent's goes out."""
    receiver = Receiver(secret=SECRET.encode(), fail_first=1)
    async with receiving(receiver) as url:
        config = config_of(
            f"""
hooks:
  - name: eu-offline
    on: [agent.offline]
    filter: {{labels: {{zone: eu}}, capability: resize}}
    webhook: {{url: "{url}", secret_env: HOOK_SECRET, timeout: 10, headers: {{X-Team: ops}}}}
""",
            env={"HOOK_SECRET": SECRET},
        )
        hsettings = hook_settings(settings)
        async with (
            running_stack(hsettings, gateway=False) as stack,
            HooksServer(hsettings.hooks(), config) as runner,
        ):
            channel = create_channel(stack.settings.registry_addr, stack.settings)
            stub = registry_pb2_grpc.RegistryServiceStub(channel)
            ids = {}
            for zone in ("eu", "us"):  # registered, then never a heartbeat: the lease expires
                reply = await stub.RegisterAgent(
                    registry_pb2.RegisterAgentRequest(
                        name=f"silent-{zone}",
                        capabilities=["resize"],
                        max_concurrency=1,
                        labels={"zone": zone},
                    ),
                    timeout=5,
                )
                ids[zone] = reply.agent.agent_id
            await channel.close()
            offline = await eventually(
                lambda: _offline_events(redis, keys, set(ids.values())), within=30
            )
            assert len(offline) == 2
            await eventually(lambda: events_of(redis, keys, *HOOK_TYPES))
            await eventually(lambda: _settled(redis, keys, runner))

    assert receiver.invalid == 0
    [doc] = receiver.valid
    assert doc["event_type"] == "agent.offline"
    assert doc["event"]["agent_id"] == ids["eu"]
    assert doc["attempt"] == 2  # the first POST got a 503 and was retried
    [hook_event] = await events_of(redis, keys, *HOOK_TYPES)
    assert hook_event.type == event_pb2.EVENT_TYPE_HOOK_SUCCEEDED
    assert hook_event.agent_id == ids["eu"] and hook_event.attempt == 2
    assert hook_event.message == "eu-offline: HTTP 204"
    first, second = receiver.headers
    assert first["X-Hivewire-Delivery"] == second["X-Hivewire-Delivery"] == doc["delivery_id"]
    assert second["X-Hivewire-Event"] == "agent.offline" and second["X-Team"] == "ops"
    body = json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()
    signed_at, signature = second[TIMESTAMP_HEADER], second["X-Hivewire-Signature"]
    assert verify(SECRET.encode(), body, signed_at, signature)
    assert not verify(b"other-" + SECRET.encode(), body, signed_at, signature)


async def _offline_events(redis: Redis, keys: Keys, agent_ids: set[str]) -> list[Any]:
    events = await events_of(redis, keys, event_pb2.EVENT_TYPE_AGENT_OFFLINE)
    return [e for e in events if e.agent_id in agent_ids] if len(events) >= 2 else []


async def test_failing_hook_is_retried_then_recorded_while_tasks_keep_flowing(
    settings: StackSettings, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    """Every hook run blocks on a gate file: all tasks still finish; then each hook fails 3x."""
    gate, runs = tmp_path / "gate", tmp_path / "runs"
    script = (
        f'echo "$HIVEWIRE_TASK_ID" >> {runs}; while [ ! -f {gate} ]; do sleep 0.05; done; exit 3'
    )
    config = config_of(
        f"""
hooks:
  - name: flaky
    on: task.succeeded
    command: {{argv: [sh, -c, '{script}'], timeout: 60}}
    max_attempts: 3
"""
    )
    hsettings = hook_settings(settings, hooks_concurrency=2)
    async with (
        running_stack(hsettings, gateway=False) as stack,
        HooksServer(hsettings.hooks(), config) as runner,
    ):
        agent = stack.new_agent("worker", max_concurrency=8)

        @agent.handler("ok")
        async def ok(ctx: TaskContext) -> str:
            return "fine"

        async with agent:
            tasks = await stack.submit("ok", 20)
            ids = [t.task_id for t in tasks]
            await eventually(lambda: _all_done(stack, ids))
            # Every task finished while the hook runs are stuck at the gate.
            await eventually(lambda: _is(runner.dispatcher.in_flight == 2))
            assert await events_of(redis, keys, *HOOK_TYPES) == []
            gate.touch()
            outcomes = await eventually(lambda: _n_events(redis, keys, 20), within=90)
        assert {e.type for e in outcomes} == {event_pb2.EVENT_TYPE_HOOK_FAILED}
        assert {e.task_id for e in outcomes} == set(ids)
        assert {e.attempt for e in outcomes} == {3}
        assert {e.message for e in outcomes} == {"flaky: exit status 3"}
        ran = runs.read_text().split()
        assert sorted(ran) == sorted(ids * 3)
        await eventually(lambda: _settled(redis, keys, runner))
        assert runner.dispatcher.counts == {"succeeded": 0, "failed": 20, "retried": 40, "stale": 0}


async def _n_events(redis: Redis, keys: Keys, n: int) -> list[Any]:
    events = await events_of(redis, keys, *HOOK_TYPES)
    return events if len(events) >= n else []


async def _is(value: bool) -> bool:
    return value
