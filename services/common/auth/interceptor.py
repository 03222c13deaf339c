"""The server interceptor of authentication: every call but health and reflection needs a
bearer token whose role the method table allows; the handler runs as the call's principal
(principal.acting_as). Denials, and PERMISSION_DENIED/UNAUTHENTICATED raised by handlers (an
agent token registering a capability it lacks, another principal's agent), are audited."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from hivewire_services.common.auth.audit import Audit
from hivewire_services.common.auth.authenticator import Authenticator
from hivewire_services.common.auth.table import is_open
from hivewire_services.common.errors import PermissionDenied, Unauthenticated
from hivewire_services.common.interceptors import RewrapInterceptor, Wrappers
from hivewire_services.common.principal import Principal, acting_as, bind

Context = Any  # grpc.aio.ServicerContext
_DENIALS = (PermissionDenied, Unauthenticated)


def _who(caller: Principal, acting: Principal) -> str:
    return caller.name if acting is caller else f"{acting.name} (via {caller.name})"


class AuthInterceptor(RewrapInterceptor):
    """Binds each call's principal for its handler; refuses calls without one."""

    def __init__(self, authenticator: Authenticator, audit: Audit) -> None:
        self.authenticator = authenticator
        self.audit = audit

    def wrappers(self, details: grpc.HandlerCallDetails) -> Wrappers:
        method = details.method
        if is_open(method):
            return (lambda inner: inner), (lambda inner: inner)
        return (lambda inner: self._unary(method, inner)), (
            lambda inner: self._stream(method, inner)
        )

    async def _denied(self, method: str, context: Context, exc: Exception, name: str) -> None:
        code = "UNAUTHENTICATED" if isinstance(exc, Unauthenticated) else "PERMISSION_DENIED"
        await self.audit.denied(method, code, str(exc), principal=name, peer=context.peer() or "")

    def _unary(self, method: str, inner: Any) -> Any:
        async def unary(request: Any, context: Context) -> Any:
            name = ""
            try:
                caller, acting = await self.authenticator.authorize(
                    method, context.invocation_metadata() or ()
                )
                name = _who(caller, acting)
                with acting_as(acting):
                    return await inner(request, context)
            except _DENIALS as exc:
                await self._denied(method, context, exc, name)
                raise

        return unary

    def _stream(self, method: str, inner: Any) -> Any:
        async def stream(request: Any, context: Context) -> AsyncIterator[Any]:
            name = ""
            try:
                caller, acting = await self.authenticator.authorize(
                    method, context.invocation_metadata() or ()
                )
                name = _who(caller, acting)
                # The RPC runs in a task (and context) of its own: bind with no reset, as the
                # generator may be closed from another context.
                bind(acting)
                async for item in inner(request, context):
                    yield item
            except _DENIALS as exc:
                await self._denied(method, context, exc, name)
                raise

        return stream
