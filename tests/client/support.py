"""Test plumbing for the client: the real auth server in-process, counted and gated.

* :class:`CountingTransport` wraps the real ``httpx.ASGITransport`` of the real app and
  counts requests per path; it can hold requests to a path at a :class:`Gate` (until
  every concurrent caller has reached the auth flow) or a :class:`Barrier` (until N
  requests have arrived), so that "only one refresh" is tested while all the other
  requests are really in flight.
* :class:`CallerClock` is the server's :class:`FrozenClock` seen by the client: the same
  time, plus a record of which threads or tasks read it. The auth reads the clock before
  it takes its lock, so "every caller has read the clock" means every caller is in the
  flow, waiting for the lock or about to.
* :class:`LoopThread` and :class:`BridgeTransport` serve the ASGI app to a *sync*
  ``httpx.Client`` (the ASGI transport is async only): requests are handed to an event
  loop running the app's lifespan in another thread.
* :class:`CuttableMemoryStore` is a MemoryStore whose session writes can be cut, as a
  store outage would; the real server then answers 503 from the token and revocation
  endpoints.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Protocol, TypeVar

import httpx

from tokenward.stores import MemoryStore, StoreUnavailableError
from tokenward.stores.base import NewSession, RotateResult, Rotation
from tokenward.testing import FrozenClock

T = TypeVar("T")

TOKEN_PATH = "/oauth/token"
WAIT_LIMIT = 10.0  # seconds: a bound on waits for real events, never a way to pass time


async def wait_until(condition: Callable[[], bool], *, limit: float = WAIT_LIMIT) -> None:
    """Poll ``condition`` until it holds; fail after ``limit`` seconds of real time."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the awaited condition did not come true in time")
        await asyncio.sleep(0.001)


class CallerClock:
    """A client-side view of a :class:`FrozenClock` that records who reads it."""

    def __init__(self, clock: FrozenClock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.callers: set[object] = set()

    def now(self) -> float:
        try:
            caller: object = asyncio.current_task() or threading.get_ident()
        except RuntimeError:  # no running loop: a thread of a sync client
            caller = threading.get_ident()
        with self._lock:
            self.callers.add(caller)
        return self._clock.now()

    def forget_callers(self) -> None:
        with self._lock:
            self.callers.clear()


class Hold(Protocol):
    """Something a request waits for at the transport before it reaches the app."""

    async def wait(self) -> None: ...


class Gate:
    """Holds requests until ``callers`` distinct callers have read ``clock`` (counted
    from now, or from the last :meth:`CallerClock.forget_callers`)."""

    def __init__(self, clock: CallerClock, callers: int) -> None:
        self.clock = clock
        self.callers = callers
        clock.forget_callers()

    async def wait(self) -> None:
        await wait_until(lambda: len(self.clock.callers) >= self.callers)


class Barrier:
    """Holds requests until ``parties`` of them have arrived; ``on_open`` runs once, when
    the last one arrives (before any of them goes on)."""

    def __init__(self, parties: int, on_open: Callable[[], None] = lambda: None) -> None:
        self.parties = parties
        self.arrived = 0
        self._on_open = on_open

    async def wait(self) -> None:
        self.arrived += 1
        if self.arrived == self.parties:
            self._on_open()
        await wait_until(lambda: self.arrived >= self.parties)


class CountingTransport(httpx.AsyncBaseTransport):
    """The real ASGI transport, counting requests by path; ``holds`` delay some paths."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner
        self.paths: Counter[str] = Counter()
        self.holds: dict[str, Hold] = {}
        self._lock = threading.Lock()

    @property
    def token_requests(self) -> int:
        return self.paths[TOKEN_PATH]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.paths[request.url.path] += 1
        hold = self.holds.get(request.url.path)
        if hold is not None:
            await hold.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


class LoopThread:
    """An event loop in a daemon thread, to run the app for sync clients."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> LoopThread:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(WAIT_LIMIT)
        self.loop.close()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
        return future.result(WAIT_LIMIT)


class BridgeTransport(httpx.BaseTransport):
    """A sync transport that hands each request to an async transport on a loop thread."""

    def __init__(self, loop: LoopThread, inner: httpx.AsyncBaseTransport) -> None:
        self._loop = loop
        self._inner = inner

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def call() -> tuple[int, list[tuple[bytes, bytes]], bytes]:
            response = await self._inner.handle_async_request(request)
            body = await response.aread()
            return response.status_code, response.headers.raw, body

        status, headers, body = self._loop.run(call())
        return httpx.Response(status, headers=headers, content=body)


class CuttableMemoryStore(MemoryStore):
    """A MemoryStore whose session writes (login, refresh rotation, revocation) fail like
    an unreachable store's while ``cut`` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.cut = False

    def _check(self) -> None:
        if self.cut:
            raise StoreUnavailableError("the store is cut (test)")

    async def create_session(self, session: NewSession) -> None:
        self._check()
        await super().create_session(session)

    async def rotate(self, rotation: Rotation) -> RotateResult:
        self._check()
        return await super().rotate(rotation)

    async def revoke_session(
        self, sid: str, *, now: float, reason: str, event_expires_at: float
    ) -> bool:
        self._check()
        return await super().revoke_session(
            sid, now=now, reason=reason, event_expires_at=event_expires_at
        )
