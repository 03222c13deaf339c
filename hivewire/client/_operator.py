"""Client SDK methods for operators (a mixin of Client): pause and resume queues, drain agents."""

from __future__ import annotations

from hivewire.client._calls import GatewayCalls
from hivewire.v1 import agent_pb2, operator_pb2


class OperatorMethods(GatewayCalls):
    """Operator calls of the Client."""

    async def pause_queue(self, capability: str) -> operator_pb2.Queue:
        """Stop assigning `capability`'s tasks (they stay PENDING) until resume_queue."""
        resp: operator_pb2.PauseQueueResponse = await self._stub.PauseQueue(
            operator_pb2.PauseQueueRequest(capability=capability), timeout=self.timeout
        )
        return resp.queue

    async def resume_queue(self, capability: str) -> operator_pb2.Queue:
        """Assign a paused capability's tasks again."""
        resp: operator_pb2.ResumeQueueResponse = await self._stub.ResumeQueue(
            operator_pb2.ResumeQueueRequest(capability=capability), timeout=self.timeout
        )
        return resp.queue

    async def list_queues(self) -> list[operator_pb2.Queue]:
        """Every queue live agents serve, workflows used or an operator paused, by capability."""
        resp: operator_pb2.ListQueuesResponse = await self._stub.ListQueues(
            operator_pb2.ListQueuesRequest(), timeout=self.timeout
        )
        return list(resp.queues)

    async def drain_agent(self, agent_id: str) -> agent_pb2.Agent:
        """Mark an agent DRAINING: it gets no new work, finishes what it holds, then exits."""
        resp: operator_pb2.DrainAgentResponse = await self._stub.DrainAgent(
            operator_pb2.DrainAgentRequest(agent_id=agent_id), timeout=self.timeout
        )
        return resp.agent
