"""Client SDK methods for API tokens and the audit trail (a mixin of Client; admin tokens only)."""

from __future__ import annotations

from collections.abc import Sequence

import grpc

from hivewire.v1 import auth_pb2, auth_pb2_grpc


class TokenMethods:
    """AuthService calls of the Client."""

    _channel: grpc.aio.Channel
    timeout: float

    @property
    def _auth(self) -> auth_pb2_grpc.AuthServiceStub:
        return auth_pb2_grpc.AuthServiceStub(self._channel)

    async def create_token(
        self, name: str, role: str, *, tenant: str = "", capabilities: Sequence[str] = ()
    ) -> auth_pb2.CreateTokenResponse:
        """A new token; its secret (`.token`) is shown this once."""
        request = auth_pb2.CreateTokenRequest(
            name=name, role=role, tenant=tenant, capabilities=list(capabilities)
        )
        reply: auth_pb2.CreateTokenResponse = await self._auth.CreateToken(
            request, timeout=self.timeout
        )
        return reply

    async def list_tokens(self) -> list[auth_pb2.TokenInfo]:
        reply = await self._auth.ListTokens(auth_pb2.ListTokensRequest(), timeout=self.timeout)
        return list(reply.tokens)

    async def revoke_token(self, name: str) -> None:
        await self._auth.RevokeToken(auth_pb2.RevokeTokenRequest(name=name), timeout=self.timeout)

    async def audit_entries(self, limit: int = 100) -> list[auth_pb2.AuditEntry]:
        """The newest denied calls, newest first."""
        reply = await self._auth.ListAuditEntries(
            auth_pb2.ListAuditEntriesRequest(limit=limit), timeout=self.timeout
        )
        return list(reply.entries)
