"""Which hooks an event triggers: its type, then each hook's filter (capability, command, labels).

Events carry ids, not every attribute, so filters look up what they need in Redis, once per
event and only when some candidate hook asks for it:
- capability: the event's capability; for an event without one (agent.offline), any of the
  agent's capabilities;
- command: the command of the event's workflow (workflow hash field `command`);
- labels: every key=value must be among the task's required labels or the agent's labels.
"""

from __future__ import annotations

import json
from typing import Any, cast

from hivewire.core.hooks_file import Hook, HooksConfig
from hivewire.v1 import event_pb2
from hivewire_services.common.errors import InvalidArgument
from hivewire_services.common.keys import Keys
from hivewire_services.common.redis import Redis


class EventFacts:
    """Attributes of an event's task, agent and workflow, read from Redis on first use."""

    def __init__(self, redis: Redis, keys: Keys, event: event_pb2.Event) -> None:
        self.redis = redis
        self.keys = keys
        self.event = event
        self._agent: dict[bytes, bytes] | None = None
        self._task: dict[bytes, bytes] | None = None

    async def _hash(self, make_key: Any, ident: str, fields: tuple[str, ...]) -> dict[bytes, bytes]:
        if not ident:
            return {}
        try:
            key = make_key(ident)
        except InvalidArgument:
            return {}
        values = cast(list[bytes | None], await self.redis.hmget(key, list(fields)))
        return {f.encode(): v for f, v in zip(fields, values, strict=True) if v is not None}

    async def agent(self) -> dict[bytes, bytes]:
        if self._agent is None:
            self._agent = await self._hash(
                self.keys.agent, self.event.agent_id, ("capabilities", "labels")
            )
        return self._agent

    async def task(self) -> dict[bytes, bytes]:
        if self._task is None:
            self._task = await self._hash(
                self.keys.task, self.event.task_id, ("labels", "workflow_id")
            )
        return self._task

    async def capabilities(self) -> set[str]:
        if self.event.capability:
            return {self.event.capability}
        raw = (await self.agent()).get(b"capabilities", b"").decode()
        return {c for c in raw.split(",") if c}

    async def labels(self) -> dict[str, str]:
        labels = _json_map((await self.task()).get(b"labels"))
        labels.update(_json_map((await self.agent()).get(b"labels")))
        return labels

    async def command(self) -> str:
        workflow_id = self.event.workflow_id
        if not workflow_id:
            workflow_id = (await self.task()).get(b"workflow_id", b"").decode()
        found = await self._hash(self.keys.workflow, workflow_id, ("command",))
        return found.get(b"command", b"").decode()


async def matches(hook: Hook, facts: EventFacts) -> bool:
    f = hook.filter
    if facts.event.type not in hook.on:
        return False
    if f.capabilities and not f.capabilities & await facts.capabilities():
        return False
    if f.commands and await facts.command() not in f.commands:
        return False
    if f.labels:
        have = await facts.labels()
        if any(have.get(k) != v for k, v in f.labels.items()):
            return False
    return True


async def hooks_for(
    config: HooksConfig, redis: Redis, keys: Keys, event: event_pb2.Event
) -> list[str]:
    """Names of the hooks this event triggers, in file order."""
    candidates = config.for_type(event.type)
    if not candidates:
        return []
    facts = EventFacts(redis, keys, event)
    return [h.name for h in candidates if await matches(h, facts)]


def _json_map(raw: bytes | None) -> dict[str, str]:
    try:
        value = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in value.items()} if isinstance(value, dict) else {}
