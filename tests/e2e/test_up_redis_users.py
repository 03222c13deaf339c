"""`hivewire up` runs its Redis with ACL users: each service as its own user, the demo agents as
users the registry made, nobody without one, and no password anywhere in what it prints."""

from __future__ import annotations

import json
import socket
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from hivewire.cli.redis_users import ACL_FILE
from hivewire.client import Client
from hivewire.core.redis_users import PASSWORDS_FILE, load_passwords
from hivewire.v1 import task_pb2, workflow_pb2
from hivewire_services.common.redis import create_redis
from tests.e2e.conftest import Stack, hivewire_up

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("hivewire-acl")


@pytest.fixture(scope="module")
def acl_stack(data_dir: Path) -> Iterator[Stack]:
    with hivewire_up(data_dir) as s:
        yield s


async def test_a_task_round_trips_with_every_process_as_its_own_redis_user(
    acl_stack: Stack,
) -> None:
    async with Client(acl_stack.gateway) as client:
        done = await client.submit_and_wait("wordcount", {"text": "a b a"}, timeout=60)
        wf = await client.run_command("diamond")
        finished = await client.wait_workflow(wf.workflow_id, timeout=60)
    assert done.state == task_pb2.TASK_STATE_SUCCEEDED, acl_stack.log()
    assert json.loads(done.result)["words"] == 3
    assert finished.state == workflow_pb2.WORKFLOW_STATE_SUCCEEDED, acl_stack.log()
    admin = create_redis(acl_stack.admin_url)
    try:
        users = [c["user"] for c in await admin.client_list()]
        assert await admin.acl_log() == [], "something was refused"
    finally:
        await admin.aclose()
    for role in ("registry", "coordinator", "gateway", "admin"):
        assert f"hivewire.hw.{role}" in users, users
    assert sum(u.startswith("hivewire.hw.agent.") for u in set(users)) == 2, users
    assert "default" not in users


def test_redis_answers_no_one_without_a_user(acl_stack: Stack) -> None:
    host, _, port = acl_stack.redis_url.removeprefix("redis://").removesuffix("/0").partition(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"GET anything\r\n")
        assert s.recv(128).startswith(b"-NOAUTH")


def test_passwords_stay_in_private_files_and_out_of_the_output(
    acl_stack: Stack, data_dir: Path
) -> None:
    passwords = load_passwords(data_dir / PASSWORDS_FILE)
    for name in (PASSWORDS_FILE, ACL_FILE):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600, name
    output = "".join(acl_stack.output)
    assert "redis     redis://hivewire.hw.admin:***@127.0.0.1:" in output
    assert not [role for role, pw in passwords.items() if pw in output]
    assert not [role for role, pw in passwords.items() if pw in (data_dir / ACL_FILE).read_text()]
