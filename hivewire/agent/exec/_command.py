"""What an exec agent runs for a task: the argv with `{field}` placeholders filled from the
task's JSON object payload, and the environment that names the task."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from string import Formatter

from hivewire.agent._context import NonRetryableError, TaskContext
from hivewire.core import tracing

# One argument as its pieces: (literal text, field name or None).
_Pieces = tuple[tuple[str, str | None], ...]

# Inherited from the agent's environment but describing the agent's own work, never the task's.
_TASK_VARS = ("HIVEWIRE_WORKFLOW_ID", "TRACEPARENT")


_HINT = "(write {{ and }} for literal braces)"


def _parse(arg: str) -> _Pieces:
    pieces: list[tuple[str, str | None]] = []
    try:
        parsed = list(Formatter().parse(arg))
    except ValueError as exc:
        raise ValueError(f"argument {arg!r}: {exc} {_HINT}") from None
    for literal, field, spec, conversion in parsed:
        if field is None:
            pieces.append((literal, None))
            continue
        if not field.isidentifier() or spec or conversion:
            # JSON or awk in a script argument: braces meant literally.
            raise ValueError(
                f"argument {arg!r}: braces that are not a {{field}} placeholder {_HINT}"
            )
        pieces.append((literal, field))
    return tuple(pieces)


def _render(value: object) -> str:
    """A payload value as an argument: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


class CommandTemplate:
    """A command line whose arguments (not the program) may hold `{field}` placeholders.

    A field is a top-level key of the payload's JSON object, named like a Python identifier;
    `{{` and `}}` are literal braces, and any other brace is refused up front.
    each filled argument stays one argv item (no shell is involved unless the command is one).
    """

    def __init__(self, argv: Sequence[str]) -> None:
        if not argv or not argv[0]:
            raise ValueError("a command is needed")
        self.program = argv[0]
        self._args = tuple(_parse(arg) for arg in argv[1:])
        self.fields = sorted({f for pieces in self._args for _, f in pieces if f is not None})

    def build(self, payload: bytes) -> list[str]:
        """The argv for one task; NonRetryableError when the payload cannot fill it."""
        values = self._values(payload) if self.fields else {}
        argv = [self.program]
        for pieces in self._args:
            text = "".join(lit + (_render(values[f]) if f is not None else "") for lit, f in pieces)
            argv.append(text)
        return argv

    def _values(self, payload: bytes) -> dict[str, object]:
        wanted = ", ".join("{" + f + "}" for f in self.fields)
        try:
            values = json.loads(payload) if payload else None
        except ValueError:
            values = None
        if not isinstance(values, dict):
            raise NonRetryableError(
                f"the command's placeholders ({wanted}) need a JSON object payload"
            )
        for name in self.fields:
            if name not in values:
                raise NonRetryableError(f"payload has no field {name!r} (placeholder {{{name}}})")
            if "\0" in _render(values[name]):
                raise NonRetryableError(f"payload field {name!r} holds a NUL character")
        return values


def task_env(ctx: TaskContext, base: Mapping[str, str]) -> dict[str, str]:
    """`base` plus HIVEWIRE_TASK_ID, HIVEWIRE_ATTEMPT, HIVEWIRE_CAPABILITY, HIVEWIRE_AGENT_ID,
    HIVEWIRE_WORKFLOW_ID (when the task is a workflow step) and TRACEPARENT (when traced)."""
    env = {k: v for k, v in base.items() if k not in _TASK_VARS}
    env["HIVEWIRE_TASK_ID"] = ctx.task_id
    env["HIVEWIRE_ATTEMPT"] = str(ctx.attempt)
    env["HIVEWIRE_CAPABILITY"] = ctx.capability
    env["HIVEWIRE_AGENT_ID"] = ctx.agent_id
    if ctx.workflow_id:
        env["HIVEWIRE_WORKFLOW_ID"] = ctx.workflow_id
    traceparent = tracing.traceparent_of()
    if traceparent:
        env["TRACEPARENT"] = traceparent
    return env
