"""The hooks file parser: what it accepts, and errors that name the file and the field."""

from __future__ import annotations

from pathlib import Path

import pytest

from hivewire.core.event_names import EVENT_NAMES, event_name, event_type
from hivewire.core.hooks_file import (
    MIN_SECRET_BYTES,
    CommandAction,
    HooksFileError,
    WebhookAction,
    load_hooks,
    parse_hooks,
)
from hivewire.v1 import event_pb2

SECRET = "s3cret-" + "x" * 25  # 32 bytes, the shortest accepted

FULL = """
hooks:
  - name: page-on-failure
    on: [task.failed, workflow.failed]
    filter:
      capability: [resize, echo]
      command: analyze-text
      labels: {zone: eu, tier: 1}
    command:
      argv: ["./notify.sh", "--channel", "ops"]
      timeout: 2.5
      cwd: /tmp
      env: {EXTRA: "yes"}
    max_attempts: 3
  - name: slack
    on: agent.offline
    webhook:
      url: https://hooks.example.com/x
      secret_env: HOOK_SECRET
      headers: {X-Team: ops}
  - name: short
    on: task.succeeded
    command: [touch, /tmp/done]
"""


def parse(text: str, env: dict[str, str] | None = None) -> object:
    return parse_hooks(text, "hooks.yaml", env or {}, default_max_attempts=5)


def error_of(text: str, env: dict[str, str] | None = None) -> str:
    with pytest.raises(HooksFileError) as info:
        parse(text, env)
    return str(info.value)


def test_full_file_parses_into_typed_hooks() -> None:
    config = parse_hooks(FULL, "hooks.yaml", {"HOOK_SECRET": SECRET}, default_max_attempts=5)
    page, slack, short = config.hooks
    assert page.on == {event_pb2.EVENT_TYPE_TASK_FAILED, event_pb2.EVENT_TYPE_WORKFLOW_FAILED}
    assert page.filter.capabilities == {"resize", "echo"}
    assert page.filter.commands == {"analyze-text"}
    assert dict(page.filter.labels) == {"zone": "eu", "tier": "1"}
    assert page.action == CommandAction(
        ("./notify.sh", "--channel", "ops"), 2.5, "/tmp", {"EXTRA": "yes"}
    )
    assert page.max_attempts == 3
    assert isinstance(slack.action, WebhookAction)
    assert slack.action.secret == SECRET.encode()
    assert slack.action.timeout == 10.0
    assert dict(slack.action.headers) == {"X-Team": "ops"}
    assert slack.filter.empty and slack.max_attempts == 5
    assert SECRET not in repr(slack.action)
    assert short.action == CommandAction(("touch", "/tmp/done"))
    assert [h.name for h in config.for_type(event_pb2.EVENT_TYPE_TASK_FAILED)] == [
        "page-on-failure"
    ]
    assert config.by_name("slack") is slack and config.by_name("nope") is None
    assert config.longest_timeout == 10.0


def test_empty_file_means_no_hooks() -> None:
    assert parse("").hooks == ()  # type: ignore[attr-defined]
    assert parse("hooks: []").hooks == ()  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hooks: {}", "hooks.yaml: hooks: must be a list"),
        ("hookz: []", "hooks.yaml: hookz: unknown field (allowed: hooks)"),
        ("- a", "top level: must be a mapping"),
        ("hooks: [{on: task.failed, command: [x]}]", "hooks[0].name: required"),
        ("hooks: [{name: Bad Name, on: task.failed, command: [x]}]", "hooks[0].name"),
        ("hooks: [{name: a, command: [x]}]", "hooks[0] (a).on: required"),
        ("hooks: [{name: a, on: task.fialed, command: [x]}]", "unknown event type 'task.fialed'"),
        ("hooks: [{name: a, on: [], command: [x]}]", "on: must be a string or a non-empty list"),
        ("hooks: [{name: a, on: hook.failed, command: [x]}]", "cannot react to hook events"),
        ("hooks: [{name: a, on: task.failed}]", "needs exactly one action: command or webhook"),
        (
            "hooks: [{name: a, on: task.failed, command: [x], webhook: http://h}]",
            "needs exactly one action",
        ),
        (
            "hooks: [{name: a, on: task.failed, webhook: 'http://h'}]",
            "(a).webhook: must be a mapping",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: []}]",
            "(a).command.argv: must be a non-empty",
        ),
        ("hooks: [{name: a, on: task.failed, command: 'rm -rf /'}]", "command: must be a mapping"),
        (
            "hooks: [{name: a, on: task.failed, command: [true]}]",
            "(a).command.argv[0]: YAML read True, not a string: quote it",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: {argv: [x], timeout: 0}}]",
            "command.timeout: must be a number of seconds",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: {argv: [x], shell: true}}]",
            "command.shell: unknown field",
        ),
        (
            "hooks: [{name: a, on: task.failed, webhook: {url: ftp://h, secret: s}}]",
            "webhook.url: must be an http:// or https:// URL",
        ),
        (
            "hooks: [{name: a, on: task.failed, webhook: {url: 'http://h'}}]",
            "needs exactly one of secret (inline) or secret_env",
        ),
        (
            "hooks: [{name: a, on: task.failed, webhook: {url: 'http://h', secret_env: NOPE}}]",
            "webhook.secret_env: environment variable NOPE is not set",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: [x], max_attempts: 0}]",
            "max_attempts: must be a whole number from 1 to 100",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: [x], filter: {capabilty: x}}]",
            "filter.capabilty: unknown field",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: [x], filter: {labels: [a]}}]",
            "filter.labels: must be a mapping",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: [x]}, {name: a, on: x.y, command: [y]}]",
            "unknown event type 'x.y'",
        ),
        (
            "hooks: [{name: a, on: task.failed, command: [x]}, "
            "{name: a, on: task.failed, command: [y]}]",
            "hooks[1].name: duplicate hook name 'a'",
        ),
        ("hooks: [unclosed", "not valid YAML"),
    ],
)
def test_invalid_files_say_what_and_where(text: str, expected: str) -> None:
    message = error_of(text)
    assert expected in message, message
    assert message.startswith("hooks.yaml: ") or expected.startswith("top level"), message


def test_load_hooks_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(HooksFileError, match=r"nope\.yaml: cannot read hooks file"):
        load_hooks(tmp_path / "nope.yaml", {})
    path = tmp_path / "hooks.yaml"
    path.write_text(
        f"hooks: [{{name: a, on: task.failed, webhook: {{url: 'http://h', secret: {SECRET}}}}}]"
    )
    assert load_hooks(path, {}).hooks[0].name == "a"


def test_shipped_example_file_is_valid(repo_root: Path) -> None:
    config = load_hooks(repo_root / "examples" / "hooks.yaml", {"HIVEWIRE_HOOK_SECRET": SECRET})
    assert config.hooks


def test_dotted_names_cover_every_event_type() -> None:
    assert event_name(event_pb2.EVENT_TYPE_TASK_FAILED) == "task.failed"
    assert event_name(event_pb2.EVENT_TYPE_AGENT_OFFLINE) == "agent.offline"
    assert event_name(event_pb2.EVENT_TYPE_WORKFLOW_SUCCEEDED) == "workflow.succeeded"
    assert event_name(event_pb2.EVENT_TYPE_TASK_DEAD_LETTERED) == "task.dead_lettered"
    assert event_name(999) == "unknown.999"
    assert len(EVENT_NAMES) == len(event_pb2.EventType.items()) - 1
    for number, name in EVENT_NAMES.items():
        assert event_type(name) == number
    with pytest.raises(ValueError, match=r"known: agent\.deregistered"):
        event_type("TASK_FAILED")


@pytest.mark.parametrize(
    ("webhook", "env", "expected"),
    [
        (
            "{url: 'http://h', secret: short}",
            {},
            "hooks.yaml: hooks[0] (pager).webhook.secret: the inline secret is 5 bytes; "
            "webhook secrets need at least 32 (make one with: openssl rand -hex 32)",
        ),
        (
            "{url: 'http://h', secret_env: HOOK_SECRET}",
            {"HOOK_SECRET": SECRET[:-1]},
            "hooks.yaml: hooks[0] (pager).webhook.secret_env: the secret in HOOK_SECRET is "
            "31 bytes; webhook secrets need at least 32",
        ),
        (  # counted in bytes, not characters: 15 two-byte characters are 30 bytes
            "{url: 'http://h', secret_env: HOOK_SECRET}",
            {"HOOK_SECRET": "é" * 15},
            "the secret in HOOK_SECRET is 30 bytes",
        ),
    ],
)
def test_short_webhook_secrets_are_refused_naming_the_hook(
    webhook: str, env: dict[str, str], expected: str
) -> None:
    text = f"hooks: [{{name: pager, on: task.failed, webhook: {webhook}}}]"
    message = error_of(text, env)
    assert expected in message, message
    assert env.get("HOOK_SECRET", "short") not in message  # the secret itself is never shown


def test_a_secret_of_the_minimum_length_is_accepted() -> None:
    text = "hooks: [{name: pager, on: task.failed, webhook: {url: 'http://h', secret_env: S}}]"
    for secret in (SECRET, "é" * 16):  # 32 bytes each (16 characters for the second)
        assert len(secret.encode()) == MIN_SECRET_BYTES
        [hook] = parse_hooks(text, "hooks.yaml", {"S": secret}).hooks
        assert isinstance(hook.action, WebhookAction) and hook.action.secret == secret.encode()
