"""ExecHandler: a task handler that runs a command once per task (the exec agent's work)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import AsyncIterator

from hivewire.agent._context import TaskContext
from hivewire.agent.exec._command import CommandTemplate, task_env
from hivewire.agent.exec._config import ExecCommand
from hivewire.agent.exec._group import GroupedCommand, start_grouped
from hivewire.agent.exec._lines import Tail, read_lines
from hivewire.agent.exec._outcome import (
    CommandNotStarted,
    CommandTimedOut,
    failure,
    success_value,
)

logger = logging.getLogger(__name__)

RESULT_TAIL = (50, 8 * 1024)  # lines, characters of stdout kept for a non-JSON result
ERROR_TAIL = (20, 2 * 1024)  # lines, characters of stderr kept for the error
# Once the command's group is gone, the time left to forward output still buffered; a process
# that left the group (setsid) yet holds the pipes is not waited for past it.
DRAIN_TIMEOUT = 30.0


class ExecHandler:
    """Runs `command` for each task: `agent.add_handler("cap", ExecHandler(cmd).run)`.

    The payload goes to stdin; stdout and stderr lines go to the task's output while it runs;
    exit 0 succeeds (result: the last stdout line if it is JSON, else {"output": the tail}),
    anything else fails with the exit status and stderr's tail. Cancellation and timeouts stop
    the whole process group: SIGTERM, then SIGKILL after `kill_grace`.
    """

    def __init__(self, command: ExecCommand) -> None:
        self.command = command
        self.template = CommandTemplate(command.argv)
        self._running: set[GroupedCommand] = set()

    async def run(self, ctx: TaskContext) -> object:
        argv = self.template.build(ctx.payload)
        async with self._task_dir(ctx) as cwd:
            return await self._run(ctx, argv, cwd)

    def kill_all(self) -> None:
        """SIGKILL every running command's process group (the agent process is ending)."""
        for command in list(self._running):
            command.kill_group()

    async def _run(self, ctx: TaskContext, argv: list[str], cwd: str) -> object:
        base = os.environ if self.command.env is None else self.command.env
        try:
            command = await start_grouped(
                argv,
                cwd=cwd,
                env=task_env(ctx, base),
                stdin=ctx.payload,
                limit=self.command.max_line,
            )
        except OSError as exc:
            raise CommandNotStarted(f"cannot start {argv[0]!r}: {exc}") from None
        self._running.add(command)
        stdout, stderr = Tail(*RESULT_TAIL), Tail(*ERROR_TAIL)
        readers = {
            asyncio.create_task(self._pump(ctx, command.stdout, "stdout", stdout)),
            asyncio.create_task(self._pump(ctx, command.stderr, "stderr", stderr)),
        }
        try:
            code = await self._wait(ctx, command, readers)
        except asyncio.CancelledError:
            for reader in readers:
                reader.cancel()
            await command.stop_group(self.command.kill_grace)
            raise
        finally:
            for reader in readers:
                reader.cancel()
            command.close()
            self._running.discard(command)
        if code == 0:
            return success_value(stdout)
        raise failure(code, stderr, code in self.command.permanent_exit_codes)

    async def _wait(
        self, ctx: TaskContext, command: GroupedCommand, readers: set[asyncio.Task[None]]
    ) -> int:
        """The command's exit code once its output is read; stops the group on --timeout, and
        stops whatever the command left running in its group when it exits."""
        grace = self.command.kill_grace
        try:
            async with asyncio.timeout(self.command.timeout):
                code = await command.exited()
        except TimeoutError:
            await command.stop_group(grace)
            await _drain(ctx, readers)
            timeout = self.command.timeout
            raise CommandTimedOut(
                f"timed out after {timeout:g} s; its process group was stopped"
            ) from None
        if await command.stop_group(grace, lambda: asyncio.wait(readers)):
            logger.warning(
                "task %s: the command left processes running; stopped its process group",
                ctx.task_id,
            )
        await _drain(ctx, readers)
        return code

    async def _pump(
        self, ctx: TaskContext, reader: asyncio.StreamReader, stream: str, tail: Tail
    ) -> None:
        """Each line to the tail and to the task's output (ctx.output waits while the agent's
        report buffer is full: the back-pressure that reaches the command through its pipe)."""
        live = True

        async def on_line(line: str) -> None:
            nonlocal live
            tail.add(line)
            if not live:
                return
            try:
                await ctx.output(line + "\n", stream)  # the newline keeps a blank line
            except Exception:
                logger.warning("task %s: live output stopped", ctx.task_id, exc_info=True)
                live = False

        await read_lines(reader, self.command.max_line, on_line)

    @contextlib.asynccontextmanager
    async def _task_dir(self, ctx: TaskContext) -> AsyncIterator[str]:
        """The command's working directory: --cwd, or a fresh one for this attempt."""
        if self.command.cwd is not None:
            yield self.command.cwd
            return
        prefix = f"hivewire-{ctx.task_id}-{ctx.attempt}-"
        path = tempfile.mkdtemp(prefix=prefix, dir=self.command.workdir)
        try:
            yield path
        finally:
            if not self.command.keep_workdir:
                await asyncio.shield(asyncio.to_thread(shutil.rmtree, path, ignore_errors=True))


async def _drain(ctx: TaskContext, readers: set[asyncio.Task[None]]) -> None:
    """Wait for the readers to reach EOF (bounded), so the tails hold all the output."""
    _, late = await asyncio.wait(readers, timeout=DRAIN_TIMEOUT)
    if late:
        logger.warning("task %s: output still open after its command ended", ctx.task_id)
    for reader in readers - late:
        if not reader.cancelled() and reader.exception() is not None:
            logger.warning(
                "task %s: reading output failed", ctx.task_id, exc_info=reader.exception()
            )
