"""Keep a key source fresh from a background thread, for synchronous (WSGI) apps.

A WSGI app verifies with the sync ``Verifier.verify``, which never fetches keys. A
remote JWKS must then be loaded before serving and refreshed outside the requests: this
daemon thread runs its own event loop, loads the source once (``start`` raises if that
fails, so a misconfigured app does not start), then calls ``ensure_fresh`` every
``interval`` seconds, which refetches per the server's cache headers. Request threads
only read ``source.key_set``, a reference swapped atomically by a refetch.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading

from tokenward.errors import ConfigurationError
from tokenward.integrations._bearer import require_http_client
from tokenward.service import KeySource, RemoteJWKS

__all__ = ["BackgroundKeyRefresh"]

_log = logging.getLogger("tokenward.integrations")


class BackgroundKeyRefresh:
    """Load a key source, then keep it fresh from a daemon thread.

    >>> # refresher = BackgroundKeyRefresh(RemoteJWKS("https://auth.example/.well-known/jwks.json"))
    >>> # refresher.start()   # raises the first load's error (JWKSFetchError) at once
    >>> # ...                 # serve; refresher.stop() at shutdown
    """

    def __init__(self, source: KeySource, *, interval: float = 10.0) -> None:
        if not isinstance(source, KeySource):
            raise ConfigurationError("BackgroundKeyRefresh needs a KeySource")
        if type(interval) not in (int, float) or not 0 < interval < math.inf:
            raise ConfigurationError("interval must be a positive number of seconds")
        require_http_client(source)
        self.source = source
        self.interval = float(interval)
        self.checks = 0
        """How many ``ensure_fresh`` rounds ran (for tests and metrics)."""
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._started = threading.Event()
        self._error: BaseException | None = None

    def start(self, *, timeout: float = 30.0) -> None:
        """Start the thread and wait for the first load (raising its error, if any)."""
        if self._thread is not None:
            raise ConfigurationError("this refresher was already started")
        self._thread = threading.Thread(target=self._main, name="tokenward-keys", daemon=True)
        self._thread.start()
        if not self._started.wait(timeout):
            raise TimeoutError("the key source did not load in time")
        if self._error is not None:
            self._thread.join()
            raise self._error

    def stop(self, *, timeout: float = 10.0) -> None:
        """Stop the thread (idempotent)."""
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            # The loop may close in between: the thread is ending anyway.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)

    def __enter__(self) -> BackgroundKeyRefresh:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _main(self) -> None:
        asyncio.run(self._run())

    async def _run(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stopping = asyncio.Event()
        source = self.source
        if isinstance(source, RemoteJWKS):
            try:
                await source.load()
            # Any error, not only a TokenwardError: it is handed to start(), which raises
            # it in the caller's thread. Left to end this thread, it left start() waiting
            # for its whole timeout and then reporting a timeout instead of the cause.
            except Exception as exc:  # noqa: BLE001 (re-raised by start)
                self._error = exc
                self._started.set()
                await source.aclose()
                return
        self._started.set()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._stopping.wait(), self.interval)
                except TimeoutError:
                    await source.ensure_fresh()  # Never raises for fetch failures.
                    self.checks += 1
                else:
                    return
        finally:
            if isinstance(source, RemoteJWKS):
                await source.aclose()
