"""`hivewire up` restart policy: backoff per crash in the window, crash-loop limit, settings."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from hivewire.cli import app
from hivewire.cli.restarts import CrashHistory, RestartPolicy, describe_exit

runner = CliRunner()


def test_restarts_back_off_doubling_from_the_delay_up_to_the_cap() -> None:
    history = CrashHistory(RestartPolicy(max_restarts=100, window=1000.0, delay=0.5))
    verdicts = [history.crashed(float(t)) for t in range(9)]
    assert [v.restart for v in verdicts] == list(range(1, 10))
    for verdict, ceiling in zip(verdicts, [0.5, 1, 2, 4, 8, 16, 30, 30, 30], strict=True):
        assert ceiling / 2 <= verdict.delay <= ceiling
        assert not verdict.give_up


def test_a_child_is_given_up_on_after_max_restarts_within_the_window() -> None:
    history = CrashHistory(RestartPolicy(max_restarts=2, window=60.0))
    assert [history.crashed(t).restart for t in (0.0, 10.0)] == [1, 2]
    verdict = history.crashed(20.0)
    assert verdict.give_up and verdict.crashes == 3


def test_crashes_older_than_the_window_no_longer_count() -> None:
    history = CrashHistory(RestartPolicy(max_restarts=2, window=60.0, delay=0.5))
    history.crashed(0.0)
    history.crashed(30.0)
    verdict = history.crashed(61.0)  # the crash at 0 is out of the window: 2 remain
    assert (verdict.restart, verdict.give_up) == (2, False)
    assert 0.5 <= verdict.delay <= 1.0  # and the backoff counts only those


def test_max_restarts_zero_never_restarts() -> None:
    assert CrashHistory(RestartPolicy(max_restarts=0)).crashed(0.0).give_up


@pytest.mark.parametrize(
    ("returncode", "text"),
    [(-9, "-9 (signal SIGKILL)"), (-15, "-15 (signal SIGTERM)"), (2, "2"), (0, "0"), (-99, "-99")],
)
def test_exits_are_described_with_the_signal_name(returncode: int, text: str) -> None:
    assert describe_exit(returncode) == text


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        (["--max-restarts", "-1"], {}, "--max-restarts"),
        (["--restart-window", "0"], {}, "--restart-window"),
        (["--restart-delay", "-2"], {}, "--restart-delay"),
        ([], {"HIVEWIRE_MAX_RESTARTS": "many"}, "HIVEWIRE_MAX_RESTARTS='many'"),
        ([], {"HIVEWIRE_MAX_RESTARTS": "1.5"}, "HIVEWIRE_MAX_RESTARTS='1.5'"),
        ([], {"HIVEWIRE_RESTART_WINDOW": "-5"}, "HIVEWIRE_RESTART_WINDOW='-5'"),
        ([], {"HIVEWIRE_RESTART_DELAY": "soon"}, "HIVEWIRE_RESTART_DELAY='soon'"),
        ([], {"HIVEWIRE_RESTART_WINDOW": "nan"}, "HIVEWIRE_RESTART_WINDOW='nan'"),
    ],
)
def test_up_refuses_bad_restart_settings_naming_them(
    args: list[str], env: dict[str, str], named: str
) -> None:
    result = runner.invoke(app, ["up", *args], env=env)
    assert result.exit_code == 2, result.output
    assert named in result.output
    assert "Traceback" not in result.output
