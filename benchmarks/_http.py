"""Pieces the HTTP benchmarks share: a minimal keep-alive HTTP/1.1 client and a free port.

The client is deliberately small (one request in flight per connection, responses
framed by Content-Length) so the load generator costs far less CPU than the server it
drives; ``benchmarks/server.py`` and ``benchmarks/verify.py`` check that it is not the
bottleneck.
"""

from __future__ import annotations

import asyncio
import socket

__all__ = ["BenchmarkError", "HttpConnection", "free_port"]


class BenchmarkError(Exception):
    """The run cannot go on (a server did not start, a request was refused, ...)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class HttpConnection(asyncio.Protocol):
    """One keep-alive HTTP/1.1 connection, one request in flight, framed by Content-Length."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None

    @classmethod
    async def open(cls, port: int) -> HttpConnection:
        """Connect to 127.0.0.1:``port`` (asyncio sets TCP_NODELAY)."""
        loop = asyncio.get_running_loop()
        _, protocol = await loop.create_connection(cls, "127.0.0.1", port)
        return protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        """Buffer; complete the waiting request once its whole body is in."""
        buffer = self.buffer
        buffer += data
        waiter = self.waiter
        if waiter is None:
            return
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(buffer[:end]).lower()
        start = head.find(b"\r\ncontent-length:")
        if start < 0:
            self.waiter = None
            waiter.set_exception(BenchmarkError(f"no Content-Length in {head[:200]!r}"))
            return
        stop = head.find(b"\r\n", start + 2)
        length = int(head[start + 17 : stop if stop >= 0 else len(head)])
        total = end + 4 + length
        if len(buffer) < total:
            return
        body = bytes(buffer[end + 4 : total])
        del buffer[:total]
        self.waiter = None
        waiter.set_result((int(head[9:12]), body))

    def connection_lost(self, exc: Exception | None) -> None:
        """Fail the waiting request, if any."""
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_exception(BenchmarkError(f"the server closed the connection ({exc})"))

    def request(self, data: bytes) -> asyncio.Future[tuple[int, bytes]]:
        """Send one request; the future gives ``(status, body)``."""
        assert self.transport is not None
        waiter: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self.waiter = waiter
        self.transport.write(data)
        return waiter

    def close(self) -> None:
        """Close the connection."""
        if self.transport is not None:
            self.transport.close()
