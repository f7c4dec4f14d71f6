"""Helpers for tests of applications that use tokenward: a frozen clock, key factories,
and a loopback TCP proxy that can be cut to simulate a store outage.

>>> from tokenward.testing import FrozenClock
>>> clock = FrozenClock(1_800_000_000)
>>> clock.advance(90)
>>> clock.now()
1800000090.0
"""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from tokenward.jose import Key

__all__ = ["CuttableProxy", "FrozenClock", "signing_key"]

_CHUNK = 65536


class FrozenClock:
    """A clock that moves only when told to; tests never sleep to pass time."""

    __slots__ = ("_now",)

    def __init__(self, now: float = 1_800_000_000.0) -> None:
        self._now = float(now)

    def now(self) -> float:
        """The frozen time in Unix seconds."""
        return self._now

    def advance(self, seconds: float | timedelta) -> None:
        """Move time forward (never backward)."""
        delta = seconds.total_seconds() if isinstance(seconds, timedelta) else float(seconds)
        if delta < 0:
            raise ValueError("a frozen clock only moves forward")
        self._now += delta

    def set(self, now: float) -> None:
        """Jump to ``now`` (which must not be in the past)."""
        if now < self._now:
            raise ValueError("a frozen clock only moves forward")
        self._now = float(now)


def signing_key(alg: str = "ES256", kid: str = "test-key") -> Key:
    """A fresh private key for ``alg`` with a fixed ``kid``, for tests."""
    return Key.generate(alg, kid=kid)


class CuttableProxy:
    """Forward ``127.0.0.1:<port>`` to ``target``; :meth:`cut` drops and refuses connections.

    ::

        proxy = CuttableProxy("127.0.0.1", 6379)
        await proxy.start()          # proxy.port is the port to connect to
        await proxy.cut()            # the store is "down"
        await proxy.restore()        # and back
        await proxy.close()
    """

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.connections = 0
        """Connections accepted so far (reconnections after a restore included)."""
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def up(self) -> bool:
        """True while the proxy accepts connections."""
        return self._server is not None

    async def start(self) -> None:
        """Listen on an ephemeral loopback port (the same one again after a cut)."""
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await reader.read(_CHUNK):
                writer.write(data)
                await writer.drain()
        writer.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        self.connections += 1
        self._writers.update((writer, up_writer))
        for task in (
            asyncio.ensure_future(self._pipe(reader, up_writer)),
            asyncio.ensure_future(self._pipe(up_reader, writer)),
        ):
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def cut(self) -> None:
        """Reset every open connection and stop accepting new ones."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            with contextlib.suppress(OSError, RuntimeError):
                writer.transport.abort()
        self._writers.clear()
        await asyncio.sleep(0)

    async def restore(self) -> None:
        """Accept connections again, on the same port."""
        if self._server is None:
            await self.start()

    async def close(self) -> None:
        """Cut everything and wait for the forwarding tasks to end."""
        await self.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
