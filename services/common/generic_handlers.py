"""Servicers added to a grpc.aio server through their generic handler only.

The generated `add_<Service>Servicer_to_server` functions hand the same method handlers to the
server twice: as a generic handler and as registered methods. grpc.aio's serving loop keeps
one pending request per registered method and, for every call that arrives, waits on all of
them again (`asyncio.wait` over one future per method: about 40 on the gateway, a
`add_done_callback` and a `remove_done_callback` each, per RPC). With the generic handler
alone it waits on one future, and each call finds its handler by one dict lookup.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, cast

import grpc


class GenericOnly:
    """The server as the generated registration code sees it: the registered-method copy of
    each service's handlers is dropped (its generic handler, added first, serves them)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(handlers))

    def add_registered_method_handlers(self, service: str, handlers: Mapping[str, Any]) -> None:
        """Served by the generic handler of the same service."""


def generic_only(server: grpc.aio.Server) -> grpc.aio.Server:
    """`server` for `add_<Service>Servicer_to_server` and reflection: generic handlers only."""
    return cast(grpc.aio.Server, GenericOnly(server))
