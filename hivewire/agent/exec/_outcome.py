"""How a command's end becomes the task's end: a result from its stdout, or an error."""

from __future__ import annotations

import json
import signal

from hivewire.agent._context import NonRetryableError
from hivewire.agent.exec._lines import Tail


class CommandFailed(Exception):
    """The command exited non-zero or was killed by a signal (the task may be retried)."""


class CommandNotStarted(Exception):
    """The command could not be started (e.g. not found on this host)."""


class CommandTimedOut(TimeoutError):
    """The command ran past the exec agent's --timeout; its process group was killed."""


def exit_status(returncode: int) -> str:
    """'exit status N', or 'killed by signal NAME' for a negative return code."""
    if returncode >= 0:
        return f"exit status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = str(-returncode)
    return f"killed by signal {name}"


def success_value(stdout: Tail) -> bytes | dict[str, str]:
    """The last non-blank stdout line when it is JSON (as it is), else {"output": the tail}."""
    line = stdout.last_line.strip()
    if line:
        try:
            json.loads(line)
        except ValueError:
            pass
        else:
            return line.encode()
    return {"output": stdout.text()}


def failure(returncode: int, stderr: Tail, permanent: bool) -> Exception:
    """The error for a command that did not exit 0: its status and the tail of its stderr;
    NonRetryableError when `permanent` (an exit code the agent was told means "do not retry")."""
    message = exit_status(returncode)
    tail = stderr.text()
    if tail:
        message += "; stderr:\n" + tail
    return NonRetryableError(message) if permanent else CommandFailed(message)
