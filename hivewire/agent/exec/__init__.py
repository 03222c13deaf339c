"""Exec agents: put any command behind Hivewire, run once per task in its own process group.

handler = ExecHandler(ExecCommand(["sh", "-c", "wc -w"], timeout=60))
agent = Agent("counter", max_concurrency=2)
agent.add_handler("count-words", handler.run)
run_agent(agent)

`hivewire exec-agent --capability count-words -- sh -c 'wc -w'` does the same.
"""

from hivewire.agent.exec._command import CommandTemplate, task_env
from hivewire.agent.exec._config import DEFAULT_KILL_GRACE, ExecCommand
from hivewire.agent.exec._handler import ExecHandler
from hivewire.agent.exec._outcome import CommandFailed, CommandNotStarted, CommandTimedOut

__all__ = [
    # What runs, and the handler that runs it
    "DEFAULT_KILL_GRACE",
    "ExecCommand",
    "ExecHandler",
    # How the command line and environment are built
    "CommandTemplate",
    "task_env",
    # Errors a task may end with
    "CommandFailed",
    "CommandNotStarted",
    "CommandTimedOut",
]
