"""A loopback TCP proxy for fault tests: cut every connection through it (as a network failure
does), or hold back what clients send while the replies still flow."""

from __future__ import annotations

import asyncio
import contextlib
from types import TracebackType

CHUNK = 65536


class TcpProxy:
    """`async with TcpProxy("127.0.0.1:port") as proxy:` listens on `proxy.addr` (port 0)."""

    def __init__(self, target: str) -> None:
        host, port = target.rsplit(":", 1)
        self._target = (host, int(port))
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._pipes: set[asyncio.Task[None]] = set()
        self._upstream = asyncio.Event()
        self._upstream.set()
        self.addr = ""
        self.accepted = 0

    async def __aenter__(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.addr = f"127.0.0.1:{port}"
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._server is not None
        self._server.close()
        self.cut()
        for pipe in list(self._pipes):
            pipe.cancel()
        await asyncio.gather(*self._pipes, return_exceptions=True)
        await self._server.wait_closed()

    def hold_upstream(self) -> None:
        """Stop forwarding what clients send (it is kept until `cut` drops it)."""
        self._upstream.clear()

    def cut(self) -> None:
        """Reset every open connection, both sides; new connections are forwarded again."""
        for writer in self._writers:
            writer.transport.abort()
        self._writers.clear()
        self._upstream.set()

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.accepted += 1
        try:
            target_r, target_w = await asyncio.open_connection(*self._target)
        except OSError:
            client_w.transport.abort()
            return
        self._writers |= {client_w, target_w}
        pipes = {
            asyncio.create_task(self._pump(client_r, target_w, self._upstream)),
            asyncio.create_task(self._pump(target_r, client_w, None)),
        }
        self._pipes |= pipes
        try:
            await asyncio.wait(pipes, return_when=asyncio.FIRST_COMPLETED)
        finally:
            # One side closed: close the other too, as a connection ends for both peers.
            for writer in (client_w, target_w):
                writer.transport.abort()
                self._writers.discard(writer)
            for pipe in pipes:
                pipe.cancel()
            await asyncio.gather(*pipes, return_exceptions=True)
            self._pipes -= pipes

    @staticmethod
    async def _pump(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None
    ) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(CHUNK):
                if gate is not None:
                    await gate.wait()
                if writer.transport.is_closing():
                    return
                writer.write(data)
                await writer.drain()
