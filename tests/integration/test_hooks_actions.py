"""Hook actions on their own: real child processes and a real local HTTP server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from hivewire.core.hooks_file import CommandAction, Hook, WebhookAction
from hivewire.v1 import event_pb2
from hivewire_services.hooks.actions import ActionRunner, Outcome
from hivewire_services.hooks.payload import Delivery
from tests.integration.hooks_helpers import SECRET, Receiver, receiving
from tests.waiting import eventually

DELIVERY = Delivery(
    delivery_id="d" * 32,
    hook="h",
    entry_id="1-0",
    event=event_pb2.Event(type=event_pb2.EVENT_TYPE_TASK_FAILED, task_id="a" * 32),
    attempt=1,
)


def hook(action: CommandAction | WebhookAction) -> Hook:
    return Hook("h", frozenset({event_pb2.EVENT_TYPE_TASK_FAILED}), action)


@pytest.fixture
async def actions() -> AsyncIterator[ActionRunner]:
    runner = ActionRunner({"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TOKEN": "not-passed"})
    yield runner
    await runner.aclose()


async def test_command_outcomes(actions: ActionRunner, tmp_path: Path) -> None:
    ok = CommandAction(("sh", "-c", 'test "$LANG$TOKEN$EXTRA" = C.UTF-8x'), env={"EXTRA": "x"})
    assert await actions.run(hook(ok), DELIVERY) == Outcome(True, "exit 0")
    # Exits without reading stdin, prints more than we keep: the message has the tail.
    noisy = CommandAction(("sh", "-c", "yes line | head -n 5000; echo last words; exit 7"))
    outcome = await actions.run(hook(noisy), DELIVERY)
    assert not outcome.ok and outcome.detail.startswith("exit status 7: ")
    assert outcome.detail.endswith("last words") and len(outcome.detail) < 600
    missing = CommandAction((str(tmp_path / "nope"),))
    outcome = await actions.run(hook(missing), DELIVERY)
    assert not outcome.ok and "FileNotFoundError" in outcome.detail


async def test_command_timeout_kills_the_whole_process_group(
    actions: ActionRunner, tmp_path: Path
) -> None:
    marker, pid_file = tmp_path / "child-survived", tmp_path / "child.pid"
    # The shell starts a background child that would write the marker after 2 s.
    script = f"(sleep 2; touch {marker}) & echo $! > {pid_file}; echo started; sleep 30"
    outcome = await actions.run(hook(CommandAction(("sh", "-c", script), timeout=0.5)), DELIVERY)
    assert outcome == Outcome(False, "timed out after 0.5s: started")
    child = int(pid_file.read_text())
    # Killed with its group, or (if not) done after writing the marker: either way gone.
    await eventually(lambda: process_gone(child), within=15, message="the background child gone")
    assert not marker.exists()


def process_gone(pid: int) -> bool:
    """Whether `pid` has exited (no process, or a zombie nobody reaped yet)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] == "Z"


async def test_webhook_outcomes(actions: ActionRunner) -> None:
    receiver = Receiver(secret=SECRET.encode(), fail_first=1)
    async with receiving(receiver) as url:
        action = WebhookAction(url, SECRET.encode(), timeout=10)
        assert await actions.run(hook(action), DELIVERY) == Outcome(False, "HTTP 503")
        assert await actions.run(hook(action), DELIVERY) == Outcome(True, "HTTP 204")
        wrong = WebhookAction(url, b"not-" + SECRET.encode(), timeout=10)
        assert await actions.run(hook(wrong), DELIVERY) == Outcome(False, "HTTP 401")
        receiver.delay = 2.0
        slow = WebhookAction(url, SECRET.encode(), timeout=0.3)
        assert await actions.run(hook(slow), DELIVERY) == Outcome(False, "timed out after 0.3s")
    assert receiver.invalid == 1 and len(receiver.valid) == 1
    refused = await actions.run(hook(WebhookAction(url, SECRET.encode(), timeout=5)), DELIVERY)
    assert not refused.ok and "ConnectError" in refused.detail
