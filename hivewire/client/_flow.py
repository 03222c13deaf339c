"""Client SDK methods for rate limits (a mixin of Client); see docs/flow-control.md."""

from __future__ import annotations

from hivewire.client._calls import GatewayCalls
from hivewire.v1 import flow_pb2


class RateLimitMethods(GatewayCalls):
    """Rate limit calls of the Client."""

    async def set_rate_limit(self, name: str, limit: int, per: float) -> flow_pb2.RateLimit:
        """Create or replace the rate limit `name`: `limit` units per window of `per` seconds."""
        req = flow_pb2.SetRateLimitRequest(limit=flow_pb2.RateLimit(name=name, limit=limit))
        req.limit.window.FromNanoseconds(int(per * 1e9))
        resp: flow_pb2.SetRateLimitResponse = await self._stub.SetRateLimit(
            req, timeout=self.timeout
        )
        return resp.limit

    async def list_rate_limits(self) -> list[flow_pb2.RateLimitUsage]:
        """Every rate limit with the units used in its current window and the tasks waiting."""
        resp: flow_pb2.ListRateLimitsResponse = await self._stub.ListRateLimits(
            flow_pb2.ListRateLimitsRequest(), timeout=self.timeout
        )
        return list(resp.limits)

    async def delete_rate_limit(self, name: str) -> None:
        """Delete a rate limit (NOT_FOUND if there is none); tasks naming it no longer wait."""
        await self._stub.DeleteRateLimit(
            flow_pb2.DeleteRateLimitRequest(name=name), timeout=self.timeout
        )
