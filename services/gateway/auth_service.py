"""AuthService on the gateway: create, list and revoke API tokens, read the audit trail (the
method table allows admins only)."""

from __future__ import annotations

from typing import Any

from hivewire.core.clock import ts_from_ms
from hivewire.v1 import auth_pb2, auth_pb2_grpc
from hivewire_services.common.auth.audit import Audit
from hivewire_services.common.auth.tokens import TokenRecord, TokenStore
from hivewire_services.common.errors import InvalidArgument

Context = Any
MAX_AUDIT = 1000
DEFAULT_AUDIT = 100


def token_info(record: TokenRecord) -> auth_pb2.TokenInfo:
    return auth_pb2.TokenInfo(
        name=record.name,
        role=record.role,
        tenant=record.tenant,
        capabilities=record.capabilities,
        create_time=ts_from_ms(record.created_ms),
        revoked=record.revoked,
    )


class AuthServicer(auth_pb2_grpc.AuthServiceServicer):
    def __init__(self, store: TokenStore, audit: Audit) -> None:
        self.store = store
        self.audit = audit

    async def CreateToken(  # noqa: N802 - the RPC's name
        self, request: auth_pb2.CreateTokenRequest, context: Context
    ) -> auth_pb2.CreateTokenResponse:
        token, record = await self.store.create(
            request.name, request.role, request.tenant, list(request.capabilities)
        )
        return auth_pb2.CreateTokenResponse(info=token_info(record), token=token)

    async def ListTokens(  # noqa: N802 - the RPC's name
        self, request: auth_pb2.ListTokensRequest, context: Context
    ) -> auth_pb2.ListTokensResponse:
        return auth_pb2.ListTokensResponse(tokens=[token_info(r) for r in await self.store.list()])

    async def RevokeToken(  # noqa: N802 - the RPC's name
        self, request: auth_pb2.RevokeTokenRequest, context: Context
    ) -> auth_pb2.RevokeTokenResponse:
        await self.store.revoke(request.name)
        return auth_pb2.RevokeTokenResponse()

    async def ListAuditEntries(  # noqa: N802 - the RPC's name
        self, request: auth_pb2.ListAuditEntriesRequest, context: Context
    ) -> auth_pb2.ListAuditEntriesResponse:
        if not 0 <= request.limit <= MAX_AUDIT:
            raise InvalidArgument(f"limit must be 0-{MAX_AUDIT}", field="limit")
        rows = await self.audit.read(request.limit or DEFAULT_AUDIT)
        return auth_pb2.ListAuditEntriesResponse(
            entries=[
                auth_pb2.AuditEntry(
                    time=ts_from_ms(int(row.get("ms", "0"))),
                    service=row.get("service", ""),
                    method=row.get("method", ""),
                    principal=row.get("principal", ""),
                    peer=row.get("peer", ""),
                    code=row.get("code", ""),
                    reason=row.get("reason", ""),
                )
                for row in rows
            ]
        )
