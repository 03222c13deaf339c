"""Hooks security: a command's minimal environment, timestamped webhook signatures, long secrets."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from pathlib import Path

import httpx

from hivewire.v1 import event_pb2
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis
from hivewire_services.hooks.server import EXIT_BAD_HOOKS_FILE, HooksServer
from tests.integration.hooks_helpers import (
    SECRET,
    Receiver,
    config_of,
    documented_verify,
    emit,
    hook_settings,
    receiving,
    runner_env,
    runner_process,
)
from tests.settings import StackSettings
from tests.waiting import eventually

FAILED = event_pb2.EVENT_TYPE_TASK_FAILED
# Written to a temporary name then renamed: the test waits for the file to exist, and must
# never find it created but not yet written.
DUMP_ENV = (
    "import json, os, sys; p = sys.argv[1]; f = open(p + '.tmp', 'w');"
    " json.dump(dict(os.environ), f); f.close(); os.replace(p + '.tmp', p)"
)
EVENT_VARIABLES = {
    "HIVEWIRE_EVENT_TYPE",
    "HIVEWIRE_EVENT_CURSOR",
    "HIVEWIRE_TASK_ID",
    "HIVEWIRE_WORKFLOW_ID",
    "HIVEWIRE_STEP_ID",
    "HIVEWIRE_AGENT_ID",
    "HIVEWIRE_CAPABILITY",
    "HIVEWIRE_HOOK_NAME",
    "HIVEWIRE_DELIVERY_ID",
    "HIVEWIRE_HOOK_ATTEMPT",
}


async def test_command_hook_gets_a_minimal_environment_without_the_runners_secrets(
    settings: StackSettings, redis: Redis, keys: Keys, tmp_path: Path
) -> None:
    """The real runner process holds a webhook secret and more; the command sees none of it."""
    out = tmp_path / "env.json"
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(
        "hooks:\n"
        "  - name: dump-env\n"
        "    on: task.failed\n"
        f"    command: {{argv: [{sys.executable}, -c, {json.dumps(DUMP_ENV)}, {out}],"
        " env: {HOOK_VAR: mine}}\n"
        "  - name: pager\n"  # makes the runner load the secret
        "    on: agent.offline\n"
        "    webhook: {url: 'http://127.0.0.1:9/x', secret_env: HIVEWIRE_HOOK_SECRET}\n"
    )
    runner_vars = {
        "HIVEWIRE_HOOK_SECRET": SECRET,
        "AWS_SECRET_ACCESS_KEY": "aws-secret-value",
        "SOME_SETTING": "other-value",
        "HOME": str(tmp_path),
        "TZ": "Europe/Paris",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
    }
    log: list[bytes] = []
    async with runner_process(settings, hooks, log, runner_vars):
        task = uuid.uuid4().hex
        await emit(redis, keys, FAILED, task_id=task, capability="x")
        await eventually(out.exists, message=b"".join(log).decode())
        env = json.loads(out.read_text())

    inherited = {k for k in env if k in {"PATH", "HOME", "LANG", "TZ", "TMPDIR"}}
    inherited |= {k for k in env if k.startswith("LC_")}
    assert set(env) - inherited == EVENT_VARIABLES | {"HOOK_VAR"}, sorted(env)
    assert env["HOOK_VAR"] == "mine" and env["HIVEWIRE_TASK_ID"] == task
    assert (env["HOME"], env["TZ"], env["LANG"], env["LC_ALL"]) == (
        str(tmp_path),
        "Europe/Paris",
        "C.UTF-8",
        "C.UTF-8",
    )
    assert env["PATH"] == runner_env(settings, hooks)["PATH"]
    leaked = [SECRET, "aws-secret-value", "other-value", settings.redis_url]
    assert not [v for v in env.values() if any(secret in v for secret in leaked)]


async def test_webhook_signature_carries_a_timestamp_and_a_replay_is_refused(
    settings: StackSettings, redis: Redis, keys: Keys
) -> None:
    receiver = Receiver(secret=SECRET.encode())  # checks with the verifier of docs/hooks.md
    async with receiving(receiver) as url:
        config = config_of(
            f"hooks: [{{name: web, on: task.failed, "
            f"webhook: {{url: '{url}', secret_env: HOOK_SECRET, timeout: 10}}}}]",
            env={"HOOK_SECRET": SECRET},
        )
        hsettings = hook_settings(settings)
        async with HooksServer(hsettings.hooks(), config):
            before = time.time()
            await emit(redis, keys, FAILED, task_id=uuid.uuid4().hex, capability="x")
            [doc] = await eventually(lambda: receiver.valid)
            after = time.time()
        [headers], [body] = receiver.headers, receiver.bodies
        assert doc["event_type"] == "task.failed"
        signed_at, signature = headers["X-Hivewire-Timestamp"], headers["X-Hivewire-Signature"]
        assert int(before) <= int(signed_at) <= after

        verify, secret, sent = documented_verify(), SECRET.encode(), int(signed_at)
        assert verify(secret, body, signed_at, signature, sent + 299)
        assert not verify(secret, body, signed_at, signature, sent + 301)  # past the window
        # The timestamp is signed: moving it forward to pass the window breaks the signature.
        assert not verify(secret, body, str(sent + 300), signature, sent + 301)
        assert not verify(secret, body + b" ", signed_at, signature, sent)
        assert not verify(b"x" * 32, body, signed_at, signature, sent)

        # The captured request replayed over HTTP six minutes later is refused ...
        replay = {k: headers[k] for k in ("Content-Type", "X-Hivewire-Timestamp")}
        replay["X-Hivewire-Signature"] = signature
        receiver.clock = lambda: time.time() + 360
        async with httpx.AsyncClient(timeout=10) as client:
            late = await client.post(url, content=body, headers=replay)
            # ... and accepted by a receiver whose clock says it is still fresh: the timestamp,
            # not anything else about the request, is what refused it.
            receiver.clock = time.time
            fresh = await client.post(url, content=body, headers=replay)
    assert (late.status_code, fresh.status_code) == (401, 204)
    assert receiver.invalid == 1 and len(receiver.valid) == 2


async def test_runner_refuses_a_short_secret_at_load(
    settings: StackSettings, tmp_path: Path
) -> None:
    hooks = tmp_path / "hooks.yaml"
    hooks.write_text(
        "hooks:\n"
        "  - {name: pager, on: agent.offline,"
        " webhook: {url: 'http://127.0.0.1:9/x', secret_env: HIVEWIRE_HOOK_SECRET}}\n"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hivewire_services.hooks",
        env={**runner_env(settings, hooks), "HIVEWIRE_HOOK_SECRET": "s3cret"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == EXIT_BAD_HOOKS_FILE, output.decode()
    assert (
        f"{hooks}: hooks[0] (pager).webhook.secret_env: the secret in HIVEWIRE_HOOK_SECRET is "
        "6 bytes; webhook secrets need at least 32"
    ) in output.decode()
    assert "s3cret" not in output.decode()
