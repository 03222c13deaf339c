"""Helpers of the authentication tests: a stack with tokens on, tokens of every role, and a
generic call of any method with an empty request."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import grpc
from google.protobuf import descriptor, message_factory

from hivewire.core.credentials import bearer
from hivewire.core.tls import PLAINTEXT, aio_channel

SERVICE_TOKEN = "hw-test-service-token-" + "0" * 40
ROLE_TOKENS = ("admin", "client", "viewer", "agent")
DENIALS = (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED)


def methods(service: descriptor.ServiceDescriptor) -> list[descriptor.MethodDescriptor]:
    return list(service.methods)


async def call(
    addr: str,
    method: descriptor.MethodDescriptor,
    token: str | None,
    metadata: Sequence[tuple[str, str]] = (),
    deadline: float = 3.0,
) -> grpc.StatusCode:
    """The status of calling `method` with an empty request (a stream: its first message or
    its end; a stream still open at the deadline gives DEADLINE_EXCEEDED)."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    request = message_factory.GetMessageClass(method.input_type)()
    md = [*metadata, *([bearer(token)] if token is not None else [])]
    kwargs = {"request_serializer": type(request).SerializeToString}
    async with aio_channel(addr, PLAINTEXT) as channel:
        try:
            if method.client_streaming:
                stub = channel.stream_stream(path, **kwargs)

                async def nothing():  # type: ignore[no-untyped-def]
                    await asyncio.sleep(deadline * 2)
                    yield request

                stream = stub(nothing(), metadata=md, timeout=deadline)
                async for _ in stream:
                    break
                return grpc.StatusCode.OK
            if method.server_streaming:
                async for _ in channel.unary_stream(path, **kwargs)(
                    request, metadata=md, timeout=deadline
                ):
                    break
                return grpc.StatusCode.OK
            await channel.unary_unary(path, **kwargs)(request, metadata=md, timeout=deadline)
            return grpc.StatusCode.OK
        except grpc.aio.AioRpcError as exc:
            return exc.code()
