"""`hivewire hooks check`: a valid file is summarised, an invalid one exits 2 naming the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from hivewire.cli import app

runner = CliRunner()


def test_check_summarises_a_valid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HIVEWIRE_HOOKS_MAX_ATTEMPTS", "7")
    path = tmp_path / "hooks.yaml"
    path.write_text(
        "hooks:\n"
        "  - {name: a, on: [task.failed, agent.offline], filter: {labels: {zone: eu}},"
        " command: [notify, --now]}\n"
        "  - {name: b, on: workflow.succeeded, filter: {command: analyze-text},"
        " webhook: {url: 'http://127.0.0.1:9/x', secret: " + "s" * 32 + ", timeout: 2},"
        " max_attempts: 2}\n"
    )
    result = runner.invoke(app, ["hooks", "check", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "a: on agent.offline,task.failed [zone=eu] -> command notify --now"
        " (timeout 10s, 7 attempts)",
        "b: on workflow.succeeded [command=analyze-text] -> webhook http://127.0.0.1:9/..."
        " (timeout 2s, 2 attempts)",
        f"{path}: 2 hook(s), valid",
    ]


def test_check_reports_an_invalid_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "hooks.yaml"
    path.write_text("hooks: [{name: a, on: task.done, command: [x]}]\n")
    monkeypatch.setenv("HIVEWIRE_HOOKS_FILE", str(path))
    result = runner.invoke(app, ["hooks", "check"])
    assert result.exit_code == 2
    assert "hooks[0] (a).on: unknown event type 'task.done'" in result.output


def test_check_needs_a_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HIVEWIRE_HOOKS_FILE", raising=False)
    result = runner.invoke(app, ["hooks", "check"])
    assert result.exit_code == 2
    assert "HIVEWIRE_HOOKS_FILE" in result.output


@pytest.mark.parametrize("command", [["hooks"], ["hooks", "check"]])
def test_hooks_commands_have_help(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output, result.output
