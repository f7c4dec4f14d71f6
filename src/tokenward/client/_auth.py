"""``httpx.Auth`` for tokenward (and any RFC 6749 server): log in, attach, renew, retry.

::

    import httpx
    from tokenward.client import FileTokenStorage, TokenwardAuth

    auth = TokenwardAuth(
        "https://auth.example.com/oauth/token",
        client_id="cli",
        username="ada",
        password=password,
        storage=FileTokenStorage("~/.config/example/tokens.json"),
    )
    with httpx.Client(auth=auth) as http:
        http.get("https://api.example.com/things")

How a request goes (both flavours):

1. If there is no token, or it is within the refresh margin of its expiry, take the
   lock; look again (another request may have renewed it while this one waited: then
   use that token); if still needed, send the token request *from the auth flow* (it
   is yielded to httpx, so it uses the client's transport, and it does not go through
   this auth again).
2. Send the request with ``Authorization: Bearer``.
3. On ``401`` with ``error="invalid_token"`` (RFC 6750 sec. 3.1), renew as in 1 unless
   another request already did, and send the request once more; whatever comes back
   the second time is the answer.

Only one renewal runs at a time per auth object, however many requests are in flight:
the others wait for the lock and then reuse the new token. :class:`TokenwardAuth` uses a
:class:`threading.Lock` (for :class:`httpx.Client`, shareable between threads);
:class:`AsyncTokenwardAuth` an :class:`asyncio.Lock` (for :class:`httpx.AsyncClient`,
under asyncio). The token answers appear in ``response.history`` as any auth flow's
intermediate responses do; do not log response histories.
"""

from __future__ import annotations

import asyncio
import ipaddress
import math
import threading
from collections.abc import AsyncGenerator, Generator, Iterable

import httpx

from tokenward.client._grants import ClientCredentials
from tokenward.client._session import Clock, Held, Pending, TokenSession
from tokenward.client._storage import MemoryTokenStorage, TokenStorage
from tokenward.errors import ConfigurationError

__all__ = ["AsyncTokenwardAuth", "TokenwardAuth"]


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(url: str | httpx.URL, name: str, *, allow_http: bool) -> httpx.URL:
    parsed = httpx.URL(url)
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise ConfigurationError(f"{name}: must be an absolute http(s) URL")
    # Passwords and refresh tokens go to this URL: plain HTTP only on this machine.
    if parsed.scheme == "http" and not allow_http and not _is_loopback(parsed.host):
        raise ConfigurationError(f"{name}: must use https (or pass allow_http=True)")
    return parsed


class _TokenwardAuthBase(httpx.Auth):
    """Configuration and token state shared by the two flavours (arguments: see
    :class:`TokenwardAuth`). Each flavour uses one of the two locks."""

    def __init__(
        self,
        token_url: str | httpx.URL,
        *,
        client_id: str,
        client_secret: str | None = None,
        username: str | None = None,
        password: str | None = None,
        refresh_token: str | None = None,
        scope: str | Iterable[str] | None = None,
        storage: TokenStorage | None = None,
        refresh_margin: float = 30.0,
        revocation_url: str | httpx.URL | None = None,
        allow_http: bool = False,
        clock: Clock | None = None,
    ) -> None:
        token = _endpoint(token_url, "token_url", allow_http=allow_http)
        revocation = (
            token.join("revoke")
            if revocation_url is None
            else _endpoint(revocation_url, "revocation_url", allow_http=allow_http)
        )
        if not client_id:
            raise ConfigurationError("client_id: must not be empty")
        if (username is None) != (password is None) or username == "" or password == "":
            raise ConfigurationError("username and password: give both or neither")
        if refresh_token == "":
            raise ConfigurationError("refresh_token: must not be empty")
        if not (math.isfinite(refresh_margin) and refresh_margin >= 0):
            raise ConfigurationError("refresh_margin: must be a non-negative number of seconds")
        if scope is not None and not isinstance(scope, str):
            scope = " ".join(scope)
        self._token_url = token
        self._client_id = client_id
        self._session = TokenSession(
            token_url=token,
            revocation_url=revocation,
            client=ClientCredentials(client_id, client_secret),
            username=username,
            password=password,
            refresh_token=refresh_token,
            scope=scope or None,
            storage=MemoryTokenStorage() if storage is None else storage,
            refresh_margin=refresh_margin,
            clock=clock,
        )
        self._thread_lock = threading.Lock()  # TokenwardAuth
        self._async_lock: asyncio.Lock | None = None  # AsyncTokenwardAuth, per event loop
        self._async_loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(token_url={str(self._token_url)!r}, "
            f"client_id={self._client_id!r})"
        )

    @property
    def storage(self) -> TokenStorage:
        """Where the tokens are kept."""
        return self._session.storage


class TokenwardAuth(_TokenwardAuthBase):
    """Bearer authentication for :class:`httpx.Client` that logs in and renews by itself.

    Give it the token endpoint, the client id (and secret, for a confidential client),
    something to log in with (``username`` and ``password``, or a ``refresh_token``
    from an earlier login) and, to survive restarts, a :class:`FileTokenStorage`.
    Safe to share between threads.

    >>> auth = TokenwardAuth("https://auth.example/oauth/token", client_id="web",
    ...                      username="ada", password="correct horse battery staple")
    >>> auth
    TokenwardAuth(token_url='https://auth.example/oauth/token', client_id='web')

    ``token_url``: the token endpoint (https, or http on a loopback address unless
    ``allow_http``). ``client_secret``: for a confidential client (sent with HTTP
    Basic). ``refresh_token``: used once, when the storage is empty. ``scope``: what to
    ask for at login (a string or an iterable of scopes). ``storage``: default
    :class:`MemoryTokenStorage`. ``refresh_margin``: renew this many seconds before
    expiry (default 30). ``revocation_url``: for :meth:`logout`, by default ``revoke``
    next to the token endpoint. ``clock``: an object with ``now()`` used for every time
    reading (tests); by default deadlines use :func:`time.monotonic` and the stored
    expiry :func:`time.time`.
    """

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """The flow :class:`httpx.Client` drives (see the module docstring)."""
        session = self._session
        stale: Held | None = None
        while True:
            held = session.ready(stale)
            if held is None:
                with self._thread_lock:
                    held = session.ready(stale)
                    if held is None:
                        step: Pending | Held = session.begin(stale)
                        while isinstance(step, Pending):
                            answer = yield step.request
                            answer.read()
                            step = session.receive(step, answer)
                        held = step
            response = yield session.authorize(request, held)
            # One retry at most: a token refused twice in a row is the server's answer.
            if stale is not None or not session.should_retry(request, response, held):
                return
            stale = held

    def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """Refuse: an :class:`httpx.AsyncClient` needs :class:`AsyncTokenwardAuth`."""
        raise ConfigurationError("TokenwardAuth is for httpx.Client; use AsyncTokenwardAuth")

    def logout(self, client: httpx.Client) -> None:
        """Forget the tokens and revoke their session at the server (RFC 7009).

        The storage is cleared first, so the tokens are gone locally even if the server
        cannot be reached; :class:`TokenEndpointError` then says it did not confirm. If
        the storage cannot be cleared, the session is revoked all the same and the
        storage's :class:`TokenStorageError` is raised after (a revocation error is
        raised instead, chained from it).
        """
        with self._thread_lock:
            revocation = self._session.revocation()
        if revocation is not None:
            with revocation.storage_error_after():
                response = client.send(revocation.request, auth=None)
                response.read()
                self._session.revoked(response)


class AsyncTokenwardAuth(_TokenwardAuthBase):
    """Bearer authentication for :class:`httpx.AsyncClient` (asyncio); see :class:`TokenwardAuth`.

    >>> auth = AsyncTokenwardAuth("https://auth.example/oauth/token", client_id="web",
    ...                           refresh_token="eyJ...")
    >>> auth
    AsyncTokenwardAuth(token_url='https://auth.example/oauth/token', client_id='web')

    The lock belongs to the event loop that last used the auth; use one auth object
    from one event loop at a time.
    """

    def _loop_lock(self) -> asyncio.Lock:
        # An asyncio.Lock binds to the loop it first waits in; a new loop (another
        # asyncio.run, another test) gets a new lock instead of a RuntimeError.
        loop = asyncio.get_running_loop()
        if self._async_lock is None or self._async_loop is not loop:
            self._async_lock, self._async_loop = asyncio.Lock(), loop
        return self._async_lock

    def sync_auth_flow(
        self, request: httpx.Request
    ) -> Generator[httpx.Request, httpx.Response, None]:
        """Refuse: an :class:`httpx.Client` needs :class:`TokenwardAuth`."""
        raise ConfigurationError("AsyncTokenwardAuth is for httpx.AsyncClient; use TokenwardAuth")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        """The flow :class:`httpx.AsyncClient` drives (see the module docstring)."""
        session = self._session
        stale: Held | None = None
        while True:
            held = session.ready(stale)
            if held is None:
                async with self._loop_lock():
                    held = session.ready(stale)
                    if held is None:
                        step: Pending | Held = session.begin(stale)
                        while isinstance(step, Pending):
                            answer = yield step.request
                            await answer.aread()
                            step = session.receive(step, answer)
                        held = step
            response = yield session.authorize(request, held)
            # One retry at most: a token refused twice in a row is the server's answer.
            if stale is not None or not session.should_retry(request, response, held):
                return
            stale = held

    async def logout(self, client: httpx.AsyncClient) -> None:
        """Forget the tokens and revoke their session at the server (RFC 7009); see
        :meth:`TokenwardAuth.logout` (the same order, the same errors).
        """
        async with self._loop_lock():
            revocation = self._session.revocation()
        if revocation is not None:
            with revocation.storage_error_after():
                response = await client.send(revocation.request, auth=None)
                await response.aread()
                self._session.revoked(response)
