"""Exec agents, the pure parts: placeholders, the task's environment, tails, outcomes."""

from __future__ import annotations

import json
import re
import signal

import pytest

from hivewire.agent import NonRetryableError, TaskContext
from hivewire.agent.exec import CommandFailed, CommandTemplate, ExecCommand, task_env
from hivewire.agent.exec._lines import Tail
from hivewire.agent.exec._outcome import exit_status, failure, success_value

CTX = TaskContext(task_id="a" * 32, attempt=2, capability="cap", payload=b"", agent_id="b" * 32)


def test_arguments_are_filled_from_the_payloads_fields() -> None:
    template = CommandTemplate(["prog", "--repo={repo}", "{n}", "{flag}", "{obj}", "lit"])
    payload = json.dumps({"repo": "a b; rm -rf /", "n": 3, "flag": True, "obj": {"k": [1]}})
    assert template.build(payload.encode()) == [
        "prog", "--repo=a b; rm -rf /", "3", "true", '{"k":[1]}', "lit",
    ]  # fmt: skip
    assert template.fields == ["flag", "n", "obj", "repo"]


def test_double_braces_are_literal_and_the_program_is_never_filled() -> None:
    template = CommandTemplate(["{prog}", "{{x}}", "a{{b", "}}"])
    assert template.fields == []
    assert template.build(b"not json at all") == ["{prog}", "{x}", "a{b", "}"]


def test_a_missing_field_fails_permanently_naming_it() -> None:
    template = CommandTemplate(["prog", "{repo}", "{branch}"])
    with pytest.raises(NonRetryableError, match=r"no field 'branch' \(placeholder \{branch\}\)"):
        template.build(b'{"repo": "r"}')


@pytest.mark.parametrize("payload", [b"", b"[1]", b'"text"', b"{broken"])
def test_placeholders_need_a_json_object(payload: bytes) -> None:
    with pytest.raises(NonRetryableError, match=r"placeholders \(\{a\}\) need a JSON object"):
        CommandTemplate(["prog", "{a}"]).build(payload)


def test_a_nul_character_cannot_reach_argv() -> None:
    with pytest.raises(NonRetryableError, match="'a' holds a NUL"):
        CommandTemplate(["prog", "{a}"]).build(b'{"a": "x\\u0000y"}')


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        ([], "a command is needed"),
        (["prog", "{a"], "expected '}'"),
        (["prog", "a}"], "Single '}'"),
        (["prog", "{}"], "not a {field} placeholder"),
        (["prog", "{a:>4}"], "not a {field} placeholder"),
        (["prog", "{a!r}"], "not a {field} placeholder"),
        (["prog", "{a.b}"], "not a {field} placeholder"),
        (["sh", "-c", "echo '{\"ok\": true}'"], "not a {field} placeholder"),
        (["awk", "{print $1}"], "not a {field} placeholder (write {{ and }}"),
    ],
)
def test_bad_templates_are_refused_up_front(argv: list[str], says: str) -> None:
    with pytest.raises(ValueError, match=re.escape(says)):
        CommandTemplate(argv)


def test_the_environment_names_the_task_and_drops_stale_task_variables() -> None:
    base = {"PATH": "/bin", "HIVEWIRE_WORKFLOW_ID": "stale", "TRACEPARENT": "stale"}
    env = task_env(CTX, base)
    assert env == {
        "PATH": "/bin",
        "HIVEWIRE_TASK_ID": "a" * 32,
        "HIVEWIRE_ATTEMPT": "2",
        "HIVEWIRE_CAPABILITY": "cap",
        "HIVEWIRE_AGENT_ID": "b" * 32,
    }
    step = TaskContext(
        task_id="c" * 32, attempt=1, capability="c", payload=b"", agent_id="", workflow_id="w"
    )
    assert task_env(step, {})["HIVEWIRE_WORKFLOW_ID"] == "w"


def test_tail_keeps_the_last_lines_within_both_bounds() -> None:
    tail = Tail(max_lines=3, max_chars=10)
    for line in ["one", "two", "three", "four", ""]:
        tail.add(line)
    assert tail.text() == "four\n"  # with "three" the joined text would be 11 characters
    assert tail.last_line == "four"
    long = Tail(max_lines=5, max_chars=4)
    long.add("abcdefgh")
    assert long.text() == "efgh"


def test_success_is_the_last_json_line_else_the_tail() -> None:
    out = Tail(10, 1000)
    for line in ["working", '{"ok": true, "n": 2}', "  "]:
        out.add(line)
    assert success_value(out) == b'{"ok": true, "n": 2}'
    out.add("done")
    assert success_value(out) == {"output": 'working\n{"ok": true, "n": 2}\n  \ndone'}
    assert success_value(Tail(10, 1000)) == {"output": ""}


def test_failures_name_the_exit_status_or_signal_and_the_stderr_tail() -> None:
    err = Tail(10, 1000)
    err.add("fatal: no repo")
    failed = failure(7, err, permanent=False)
    assert isinstance(failed, CommandFailed)
    assert str(failed) == "exit status 7; stderr:\nfatal: no repo"
    assert isinstance(failure(3, Tail(1, 1), permanent=True), NonRetryableError)
    assert exit_status(-signal.SIGKILL) == "killed by signal SIGKILL"
    assert exit_status(-99) == "killed by signal 99"


@pytest.mark.parametrize(
    "options",
    [
        {"timeout": 0},
        {"kill_grace": -1},
        {"max_line": 0},
        {"cwd": "/tmp", "keep_workdir": True},
        {"permanent_exit_codes": frozenset({0})},
    ],
)
def test_exec_command_refuses_contradictions(options: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        ExecCommand(["true"], **options)  # type: ignore[arg-type]
