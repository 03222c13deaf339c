"""`hivewire exec-agent`: an agent that runs a command once per task (hivewire.agent.exec)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Annotated

import typer

from hivewire.agent import Agent
from hivewire.agent.exec import DEFAULT_KILL_GRACE, ExecCommand, ExecHandler
from hivewire.cli._call import key_values
from hivewire.cli._run import serve_agent


def _executable(program: str) -> None:
    if shutil.which(program) is None:
        raise typer.BadParameter(f"{program!r} is not an executable on PATH", param_hint="CMD")


def _directory(path: Path | None, option: str, create: bool = False) -> str | None:
    if path is None:
        return None
    if create:
        path.mkdir(parents=True, exist_ok=True)
    if not path.is_dir():
        raise typer.BadParameter(f"{str(path)!r} is not a directory", param_hint=option)
    return str(path.resolve())


def exec_agent(
    command: Annotated[
        list[str],
        typer.Argument(
            help="After --: the command and its arguments; {field} in an argument is that field "
            "of the task's JSON object payload ({{ and }} for braces).",
            metavar="CMD",
        ),
    ],
    capability: Annotated[str, typer.Option(help="The capability this agent serves.")],
    concurrency: Annotated[int, typer.Option(help="Commands run at once.", min=1)] = 1,
    timeout: Annotated[
        float | None,
        typer.Option(help="Seconds a command may run before its process group is stopped."),
    ] = None,
    kill_grace: Annotated[
        float, typer.Option(help="Seconds between SIGTERM and SIGKILL to the process group.")
    ] = DEFAULT_KILL_GRACE,
    name: Annotated[str | None, typer.Option(help="Agent name (default exec-CAPABILITY).")] = None,
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where each task's fresh working directory is made (default: $TMPDIR)."),
    ] = None,
    keep_workdir: Annotated[
        bool,
        typer.Option("--keep-workdir", help="Keep each task's working directory after the task."),
    ] = False,
    cwd: Annotated[
        Path | None,
        typer.Option(help="Run every task in this directory instead of a fresh one per task."),
    ] = None,
    permanent_exit_code: Annotated[
        list[int] | None,
        typer.Option(help="An exit code that fails the task without retry (repeatable)."),
    ] = None,
    drain_grace: Annotated[
        float,
        typer.Option(help="On SIGTERM/Ctrl-C, seconds running commands get to finish."),
    ] = 30.0,
    label: Annotated[
        list[str] | None, typer.Option(help="Agent label key=value (repeatable).")
    ] = None,
) -> None:
    """Run a command once per task: payload on stdin, output streamed, exit 0 succeeds.

    Example: hivewire exec-agent --capability wc -- sh -c 'wc -w'
    """
    from hivewire.core.logs import setup_logging

    _executable(command[0])
    if timeout is not None and timeout <= 0:
        raise typer.BadParameter("must be positive", param_hint="--timeout")
    for value, option in ((kill_grace, "--kill-grace"), (drain_grace, "--drain-grace")):
        if value < 0:
            raise typer.BadParameter("must not be negative", param_hint=option)
    if cwd is not None and (workdir is not None or keep_workdir):
        raise typer.BadParameter("--cwd runs every task in one directory", param_hint="--workdir")
    codes = frozenset(permanent_exit_code or ())
    if not all(0 < code < 256 for code in codes):
        raise typer.BadParameter("exit codes are 1 to 255", param_hint="--permanent-exit-code")
    try:
        handler = ExecHandler(
            ExecCommand(
                command,
                timeout=timeout,
                kill_grace=kill_grace,
                workdir=_directory(workdir, "--workdir", create=True),
                keep_workdir=keep_workdir,
                cwd=_directory(cwd, "--cwd"),
                permanent_exit_codes=codes,
            )
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="CMD") from None
    the_agent = Agent(
        name or f"exec-{capability}",
        max_concurrency=concurrency,
        drain_grace=drain_grace,
        labels=key_values(label or [], "--label"),
    )
    try:
        the_agent.add_handler(capability, handler.run)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--capability") from None
    setup_logging("INFO", os.environ.get("HIVEWIRE_LOG_FORMAT") or "text")
    try:
        serve_agent(the_agent)
    finally:
        handler.kill_all()
