"""Agent-side hooks: callbacks before each task attempt, after a successful one, and on errors.

@agent.before_task      fn(ctx)         raising fails the attempt, like the handler raising
@agent.after_task       fn(ctx, value)  after the handler returned `value` (before it is sent)
@agent.on_error         fn(ctx, exc)    after the handler or a before-task callback raised,
                                        or the attempt timed out

Callbacks may be async or plain functions (plain ones run inline: keep them quick). Errors
in after-task and on-error callbacks are logged and never change the task's outcome.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

from hivewire.agent._context import TaskContext

logger = logging.getLogger(__name__)

BeforeTask: TypeAlias = Callable[["TaskContext"], Any]
AfterTask: TypeAlias = Callable[["TaskContext", Any], Any]
OnError: TypeAlias = Callable[["TaskContext", BaseException], Any]
F = TypeVar("F", bound=Callable[..., Any])

# After-task and on-error callbacks get this long before they are abandoned (logged).
CALLBACK_TIMEOUT = 30.0


async def _call(fn: Callable[..., Any], *args: Any) -> None:
    value = fn(*args)
    if inspect.isawaitable(value):
        await value


class TaskHooks:
    """The callbacks of one agent, in registration order."""

    def __init__(self) -> None:
        self.before: list[BeforeTask] = []
        self.after: list[AfterTask] = []
        self.errors: list[OnError] = []

    def __bool__(self) -> bool:
        return bool(self.before or self.after or self.errors)

    async def run_before(self, ctx: TaskContext) -> None:
        """Run before-task callbacks; an exception propagates and fails the attempt."""
        for fn in self.before:
            await _call(fn, ctx)

    async def run_after(self, ctx: TaskContext, value: Any) -> None:
        for fn in self.after:
            await _guarded("after_task", fn, ctx, value)

    async def run_on_error(self, ctx: TaskContext, exc: BaseException) -> None:
        for fn in self.errors:
            await _guarded("on_error", fn, ctx, exc)


async def _guarded(kind: str, fn: Callable[..., Any], ctx: TaskContext, arg: Any) -> None:
    name = getattr(fn, "__qualname__", repr(fn))
    try:
        await asyncio.wait_for(_call(fn, ctx, arg), CALLBACK_TIMEOUT)
    except asyncio.CancelledError:
        raise
    except TimeoutError:
        logger.warning("%s callback %s for task %s timed out", kind, name, ctx.task_id)
    except Exception:
        logger.exception("%s callback %s failed for task %s", kind, name, ctx.task_id)


class AgentHooks:
    """Decorators that register task hooks on an Agent (mixed into hivewire.agent.Agent)."""

    @property
    def task_hooks(self) -> TaskHooks:
        hooks = self.__dict__.get("_task_hooks")
        if hooks is None:
            hooks = self.__dict__["_task_hooks"] = TaskHooks()
        return hooks

    def before_task(self, fn: F) -> F:
        """Decorator: call `fn(ctx)` before every attempt; raising fails the attempt."""
        self.task_hooks.before.append(fn)
        return fn

    def after_task(self, fn: F) -> F:
        """Decorator: call `fn(ctx, value)` after the handler returned `value`."""
        self.task_hooks.after.append(fn)
        return fn

    def on_error(self, fn: F) -> F:
        """Decorator: call `fn(ctx, exc)` when an attempt fails with `exc`."""
        self.task_hooks.errors.append(fn)
        return fn
