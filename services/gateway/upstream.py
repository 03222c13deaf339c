"""Forwarding a checked request to the coordinator or registry: one deadline, one unwrap."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Protocol, TypeVar

from google.protobuf import message_factory
from google.protobuf.message import Message

from hivewire.core.tracing import recording
from hivewire.v1 import coordinator_pb2, coordinator_pb2_grpc, registry_pb2, registry_pb2_grpc
from hivewire_services.common.servicer_attrs import RpcAttribute
from hivewire_services.gateway.config import GatewaySettings

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
Req = TypeVar("Req", bound=Message)


class Enveloped(Protocol[T_co]):
    """An upstream reply: the public response inside a `CoordinatorService...Response`."""

    @property
    def response(self) -> T_co: ...


async def forward(
    call: Callable[..., Awaitable[Enveloped[T]]],
    envelope: Message,
    deadline: float,
    metadata: list[tuple[str, str]] | None = None,
) -> T:
    """Send `envelope` through the stub method `call` with a deadline; the public reply inside.

    An upstream error propagates as AioRpcError: the error interceptor passes its code and
    rich details through unchanged.
    """
    reply = await call(envelope, timeout=deadline, metadata=metadata)
    return reply.response


@dataclass(frozen=True)
class Direct:
    """The upstream stubs on channels without client interceptors, and the metadata those
    would add (server.outbound_metadata): forwarded unary calls go this way while no span is
    recorded, sparing each call grpc.aio's interceptor machinery."""

    coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub
    registry: registry_pb2_grpc.RegistryServiceAsyncStub
    metadata: Callable[[], list[tuple[str, str]]]


class Edge(Protocol):
    """What a forwarded RPC reads of the gateway servicer."""

    settings: GatewaySettings
    coordinator: coordinator_pb2_grpc.CoordinatorServiceAsyncStub
    registry: registry_pb2_grpc.RegistryServiceAsyncStub
    timeout: float
    direct: Direct | None


@dataclass(frozen=True)
class Upstream:
    """An upstream service: the servicer attribute holding its stub, and its generated module."""

    stub: str
    service: str
    module: ModuleType

    def envelope(self, rpc: str) -> Callable[..., Message]:
        """The request envelope of `rpc`, as the upstream's proto declares it."""
        method = self.module.DESCRIPTOR.services_by_name[self.service].methods_by_name[rpc]
        return message_factory.GetMessageClass(method.input_type)


COORDINATOR = Upstream("coordinator", "CoordinatorService", coordinator_pb2)
REGISTRY = Upstream("registry", "RegistryService", registry_pb2)


class Forward(RpcAttribute[Req]):
    """A GatewayService RPC that runs its edge check, then forwards to the same-named upstream RPC.

    Declared as a class attribute (`GetTask = Forward(checks.get_task)`): the attribute name is
    the RPC, and the upstream's proto gives the envelope, so one line states each rule. mypy
    checks the edge check's request type against the generated servicer's method.
    """

    def __init__(
        self, check: Callable[[Req, GatewaySettings], object], upstream: Upstream = COORDINATOR
    ) -> None:
        self._check = check
        self._upstream = upstream
        self._rpc = ""
        self._envelope: Callable[..., Message] = Message

    def __set_name__(self, owner: type, name: str) -> None:
        self._rpc = name
        self._envelope = self._upstream.envelope(name)

    async def _call(self, servicer: Edge, request: Req, context: Any) -> Any:
        self._check(request, servicer.settings)
        return await self.send(servicer, request)

    async def send(self, servicer: Edge, request: Req) -> Any:
        """Forward `request` without this RPC's edge check: the caller checked it otherwise."""
        envelope = self._envelope(request=request)
        direct = servicer.direct
        if direct is not None and not recording():
            stub = getattr(direct, self._upstream.stub)
            call = getattr(stub, self._rpc)
            return await forward(call, envelope, servicer.timeout, direct.metadata())
        stub = getattr(servicer, self._upstream.stub)
        return await forward(getattr(stub, self._rpc), envelope, servicer.timeout)
