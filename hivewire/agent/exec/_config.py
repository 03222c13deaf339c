"""ExecCommand: what an exec agent runs per task, and how it treats the process."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

DEFAULT_KILL_GRACE = 5.0
DEFAULT_MAX_LINE = 64 * 1024


@dataclass(frozen=True)
class ExecCommand:
    """A command line run once per task (see README, "Put any command behind Hivewire").

    Each task runs in a fresh temporary directory under `workdir` (default: the system's
    temporary directory), removed afterwards unless `keep_workdir`; or, with `cwd`, every task
    runs in that one directory.
    """

    argv: Sequence[str]
    timeout: float | None = None
    """Seconds a task's command may run; past it the process group is stopped (FAILED)."""
    kill_grace: float = DEFAULT_KILL_GRACE
    """Seconds between SIGTERM and SIGKILL to the process group."""
    workdir: str | None = None
    keep_workdir: bool = False
    cwd: str | None = None
    permanent_exit_codes: frozenset[int] = frozenset()
    """Exit codes that fail the task permanently (no retry)."""
    max_line: int = DEFAULT_MAX_LINE
    """Longer output lines are split into pieces of this many characters."""
    env: Mapping[str, str] | None = None
    """The command's base environment (default: this process's), plus the task's variables."""

    def __post_init__(self) -> None:
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError("timeout must be positive")
        if self.kill_grace < 0:
            raise ValueError("kill_grace must not be negative")
        if self.max_line < 1:
            raise ValueError("max_line must be at least 1")
        if self.cwd is not None and (self.workdir is not None or self.keep_workdir):
            raise ValueError("cwd runs every task in one directory: no workdir or keep_workdir")
        if 0 in self.permanent_exit_codes:
            raise ValueError("exit code 0 is success, it cannot fail a task")
