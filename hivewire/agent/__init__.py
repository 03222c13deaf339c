"""Agent SDK: register with the registry, keep the lease, run handlers on tasks from the inbox.

agent = Agent("summarizer", max_concurrency=8)

@agent.handler("summarize")
async def summarize(ctx: TaskContext) -> dict[str, str]:
    return {"summary": ctx.json()["text"][:100]}

run_agent(agent)
"""

from hivewire.agent._agent import Agent, run_agent
from hivewire.agent._context import Handler, NonRetryableError, TaskContext
from hivewire.agent._spawn import ChildTaskFailed
from hivewire.core.tls import PLAINTEXT, TlsConfig

__all__ = [
    # The agent and its runner
    "Agent",
    "run_agent",
    # Transport security: how it dials (default: HIVEWIRE_TLS_* or the discovered config)
    "PLAINTEXT",
    "TlsConfig",
    # What handlers see and raise
    "Handler",
    "NonRetryableError",
    "TaskContext",
    # Raised by ctx.spawn when the child task did not succeed
    "ChildTaskFailed",
]
