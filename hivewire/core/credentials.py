"""API tokens on the client side: where a client finds its token, and the channel interceptors
that send it as `authorization: Bearer <token>` on every call (docs/security.md, Tokens and
roles)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import grpc

from hivewire.core.client_config import read_client_config

AUTHORIZATION = "authorization"
Extra = Callable[[], Sequence[tuple[str, str]]]


TOKEN = "HIVEWIRE_TOKEN"
TOKEN_FILE = "HIVEWIRE_TOKEN_FILE"


class CredentialError(ValueError):
    """A token file that cannot be read, or a token given twice (names the variable)."""


def read_token_file(path: str, variable: str) -> str:
    """The token in a file (surrounding whitespace stripped); CredentialError naming `variable`
    and the path when it cannot be read or holds nothing."""
    try:
        token = Path(path).read_text().strip()
    except OSError as exc:
        raise CredentialError(f"{variable}={path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise CredentialError(f"{variable}={path}: not a text file") from None
    if not token:
        raise CredentialError(f"{variable}={path}: the file is empty")
    return token


def _token_of(values: Mapping[str, str]) -> str:
    token, path = values.get(TOKEN, ""), values.get(TOKEN_FILE, "")
    if token and path:
        raise CredentialError(f"set one of {TOKEN} and {TOKEN_FILE}")
    return read_token_file(path, TOKEN_FILE) if path else token


def token_from_env(token: str | None = None) -> str:
    """`token` if given, else HIVEWIRE_TOKEN or the file HIVEWIRE_TOKEN_FILE names, from the
    environment, else from the client config (`hivewire up --secure`, `hivewire secrets init`);
    "" for none (a stack without authentication). CredentialError for a file that cannot be
    read."""
    if token:
        return token
    return _token_of(os.environ) or _token_of(read_client_config())


def bearer(token: str) -> tuple[str, str]:
    return (AUTHORIZATION, f"Bearer {token}")


class _Adds:
    """Adds the bearer token, and whatever `extra` says at call time, to a call's metadata."""

    def __init__(self, token: str, extra: Extra | None = None) -> None:
        self._pair = bearer(token)
        self._extra = extra

    def details(self, details: grpc.aio.ClientCallDetails) -> grpc.aio.ClientCallDetails:
        metadata = [(k, v) for k, v in (details.metadata or ()) if k != AUTHORIZATION]
        metadata.append(self._pair)
        if self._extra is not None:
            metadata.extend(self._extra())
        return grpc.aio.ClientCallDetails(
            details.method,
            details.timeout,
            grpc.aio.Metadata(*metadata),
            details.credentials,
            details.wait_for_ready,
        )

    async def _continue(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Any],
        details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        return await continuation(self.details(details), request)


class _UnaryUnary(_Adds, grpc.aio.UnaryUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._continue(continuation, details, request)


class _UnaryStream(_Adds, grpc.aio.UnaryStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_unary_stream(self, continuation: Any, details: Any, request: Any) -> Any:
        return await self._continue(continuation, details, request)


class _StreamUnary(_Adds, grpc.aio.StreamUnaryClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._continue(continuation, details, requests)


class _StreamStream(_Adds, grpc.aio.StreamStreamClientInterceptor):  # type: ignore[misc]
    async def intercept_stream_stream(self, continuation: Any, details: Any, requests: Any) -> Any:
        return await self._continue(continuation, details, requests)


def bearer_interceptors(token: str, extra: Extra | None = None) -> list[grpc.aio.ClientInterceptor]:
    """Interceptors that send `token` on every kind of call ([] without a token)."""
    if not token:
        return []
    return [cls(token, extra) for cls in (_UnaryUnary, _UnaryStream, _StreamUnary, _StreamStream)]
