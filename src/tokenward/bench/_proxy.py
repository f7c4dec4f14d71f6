"""A loopback TCP proxy that can be cut, to take a networked store away mid-run.

The outage case routes its own Redis or PostgreSQL store through one of these, then
cuts it: every open connection is reset and new ones are refused, which is what a
dying server or a broken network gives a client. Restoring listens on the same port
again, so the store's client reconnects by itself, as it would when the server returns.
Stopping the real server instead would disturb everything else that uses it.
"""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["CuttableProxy"]

_CHUNK = 65536


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
