"""The client's token state, sans I/O: which token to use, when to renew it, and how.

:class:`TokenSession` holds the current token and decides; the auth flows in ``_auth.py``
do the I/O (yield the requests it builds, feed it the answers) under their lock.

* **When to renew.** A token is renewed ``refresh_margin`` seconds (default 30) before it
  expires, by the monotonic clock read when the token request was *sent* (so network
  latency counts against the token, never for it). When the lifetime is shorter than
  twice the margin, renewal comes at half the lifetime instead, so a short-lived token
  is not renewed on every request.
* **How.** With a refresh token, the refresh_token grant; without one (or after the
  server refused it), the password grant if a username and password were given; else
  :class:`LoginRequiredError`. An initial ``refresh_token`` given to the auth is used
  once, when the storage is empty; after that the rotated tokens live in the storage.
* **Refused refresh token** (``invalid_grant``: expired, revoked, or reuse was detected
  and the server ended the session): the token is forgotten, the storage is cleared,
  then the client logs in again if it can.
* **Token endpoint down** (a 5xx or 429 answer to a renewal made *before* expiry): the
  current access token, still valid, keeps being used, and renewal is not tried again
  for ``Retry-After`` seconds (5 if absent), so an outage costs one token request per
  pause, not one per API request. After expiry the answer is raised as
  :class:`TokenEndpointError`. A transport error (no answer at all) is raised by httpx
  as usual.
* **A save that fails** (a full disk, a read-only file system): the new tokens are used
  all the same, and the storage's error is raised to the request that got them. The
  server has already rotated the refresh token; presenting the old one again would end
  the session, as reuse.
* **A clear that fails** (after a refused refresh token, or at logout): the tokens are
  forgotten in memory all the same, and what had to follow still happens (the new login,
  the revocation request); the storage's error is raised after it. Were the refused
  token kept, every renewal would present it again and be refused again; were the
  revocation skipped, the session would stay valid at the server.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import httpx

from tokenward.client._errors import (
    ClientError,
    LoginFailedError,
    LoginRequiredError,
    TokenStorageError,
)
from tokenward.client._grants import (
    ClientCredentials,
    TokenAnswer,
    invalid_token_challenge,
    parse_error,
    parse_token_answer,
    retry_after,
)
from tokenward.client._storage import StoredToken, TokenStorage

__all__ = ["Clock", "Held", "Pending", "Revocation", "TokenSession"]

_log = logging.getLogger("tokenward.client")
_DEFAULT_PAUSE = 5.0

Grant = Literal["password", "refresh_token"]


class Clock(Protocol):
    """Anything with ``now()`` in seconds, like :class:`tokenward.testing.FrozenClock`."""

    def now(self) -> float:
        """The current time in seconds."""
        ...


@dataclass(frozen=True, slots=True, eq=False)
class Held:
    """The token in use, with its deadlines on the monotonic clock (None: unknown).

    Compared by identity: "is the token I sent still the current one?" is the question
    that single-flight renewal asks.
    """

    token: StoredToken
    renew_at: float | None
    expires_at: float | None


@dataclass(frozen=True, slots=True, eq=False)
class Pending:
    """A token request in flight, and what to do with its answer.

    ``storage_error``: the storage could not be cleared before this request (a login
    after a refused refresh token); raised once the answer has been taken in.
    """

    request: httpx.Request
    grant: Grant
    sent_at: float
    sent_wall: float
    refresh_token: str | None
    fallback: Held | None
    storage_error: TokenStorageError | None = None


@dataclass(frozen=True, slots=True, eq=False)
class Revocation:
    """A logout under way: the RFC 7009 request to send, and the storage's error if it
    could not be cleared."""

    request: httpx.Request
    storage_error: TokenStorageError | None

    @contextlib.contextmanager
    def storage_error_after(self) -> Iterator[None]:
        """Around sending :attr:`request`: then raise the storage's error, if any.

        If the revocation fails too (an error answer, no answer), its error is raised
        instead, chained from the storage's, so neither is lost.
        """
        if self.storage_error is None:
            yield
            return
        try:
            yield
        except (ClientError, httpx.HTTPError) as exc:
            raise exc from self.storage_error
        raise self.storage_error


class TokenSession:
    """The token state of one auth object. Callers serialise renewals with their lock."""

    def __init__(
        self,
        *,
        token_url: httpx.URL,
        revocation_url: httpx.URL,
        client: ClientCredentials,
        username: str | None,
        password: str | None,
        refresh_token: str | None,
        scope: str | None,
        storage: TokenStorage,
        refresh_margin: float,
        clock: Clock | None,
    ) -> None:
        self._token_url = token_url
        self._revocation_url = revocation_url
        self._client = client
        self._credentials = None if username is None or password is None else (username, password)
        self._seed = refresh_token
        self._scope = scope
        self._storage = storage
        self._margin = refresh_margin
        self._monotonic: Callable[[], float] = time.monotonic if clock is None else clock.now
        self._wall: Callable[[], float] = time.time if clock is None else clock.now
        self._pause_until = -math.inf
        self._rejected: Held | None = None
        stored = storage.load()
        self._held = None if stored is None else self._hold(stored, self._monotonic(), self._wall())

    @property
    def storage(self) -> TokenStorage:
        """The token storage."""
        return self._storage

    def _hold(self, token: StoredToken, monotonic: float, wall: float) -> Held:
        if token.expires_at is None:
            return Held(token, None, None)
        lifetime = token.expires_at - token.issued_at
        margin = min(self._margin, max(lifetime, 0.0) / 2)
        expires_at = monotonic + (token.expires_at - wall)
        return Held(token, expires_at - margin, expires_at)

    # -- deciding ------------------------------------------------------------------------

    def ready(self, stale: Held | None) -> Held | None:
        """The token to send now, or None if it must be renewed first.

        ``stale`` is a token the resource server just refused: if it is still the
        current one, it must be renewed; if another request renewed it meanwhile, the
        new token is used as it is.
        """
        now = self._monotonic()
        held = self._held
        if held is None or held is stale or held is self._rejected:
            return None
        if held.renew_at is None or held.expires_at is None:
            return held
        if now < held.renew_at:
            return held
        # Inside the margin: renew, unless the endpoint just failed and the token has
        # not actually expired yet.
        return held if now < self._pause_until and now < held.expires_at else None

    def authorize(self, request: httpx.Request, held: Held) -> httpx.Request:
        """``request`` with ``Authorization: Bearer`` set to ``held``'s access token."""
        request.headers["Authorization"] = f"Bearer {held.token.access_token}"
        return request

    def should_retry(self, request: httpx.Request, response: httpx.Response, held: Held) -> bool:
        """True when ``response`` refused ``held`` and ``request`` can be sent again."""
        if not invalid_token_challenge(response):
            return False
        # A streamed body has been consumed by the first attempt; only bodies held in
        # memory (bytes, str, data=, json=, or none) can be sent a second time. The 401
        # is then the answer, and the next request renews the token before it is sent.
        if not isinstance(request.stream, httpx.ByteStream):
            self._rejected = held
            _log.info("access token refused (401 invalid_token); streamed body, not retried")
            return False
        _log.info("access token refused (401 invalid_token); renewing it and retrying once")
        return True

    # -- token requests ------------------------------------------------------------------

    def begin(self, stale: Held | None) -> Pending:
        """The first token request of a renewal (the caller holds the lock)."""
        held = self._held
        refresh = held.token.refresh_token if held is not None else None
        refresh = refresh or self._seed
        # A token that is being renewed early (not refused) stays usable until it expires.
        fallback = held if held not in (None, stale, self._rejected) else None
        if refresh is not None:
            form = {"grant_type": "refresh_token", "refresh_token": refresh}
            return self._pending("refresh_token", form, refresh, fallback)
        if self._credentials is not None:
            return self._login(self._credentials, fallback)
        raise LoginRequiredError(
            "no usable token and no credentials to log in with; log in again"
            if held is None
            else "the access token cannot be renewed (no refresh token, no credentials)"
        )

    def _login(self, credentials: tuple[str, str], fallback: Held | None) -> Pending:
        username, password = credentials
        form = {"grant_type": "password", "username": username, "password": password}
        if self._scope is not None:
            form["scope"] = self._scope
        return self._pending("password", form, None, fallback)

    def _pending(
        self, grant: Grant, form: dict[str, str], refresh: str | None, fallback: Held | None
    ) -> Pending:
        request = self._client.request(self._token_url, form)
        return Pending(request, grant, self._monotonic(), self._wall(), refresh, fallback)

    def receive(self, pending: Pending, response: httpx.Response) -> Pending | Held:
        """Process the (read) answer to ``pending``: a new token, or the next request."""
        if pending.storage_error is None:
            return self._receive(pending, response)
        # The login after a refused refresh token that the storage could not forget: its
        # outcome first (new tokens are held for the next request), then the storage's
        # error, as after a failed save.
        try:
            self._receive(pending, response)
        except ClientError as exc:
            raise exc from pending.storage_error
        raise pending.storage_error

    def _receive(self, pending: Pending, response: httpx.Response) -> Pending | Held:
        if response.status_code == 200:
            return self._accept(pending, parse_token_answer(response))
        problem = parse_error(response)
        refresh = pending.grant == "refresh_token"
        if refresh and problem.error == "invalid_grant" and problem.status < 500:
            return self._refused()
        if problem.status >= 500 or problem.status == 429:
            fallback = self._fallback(pending, response)
            if fallback is not None:
                return fallback
        if not refresh and problem.error == "invalid_grant":
            _log.warning("login refused (HTTP %d, invalid_grant)", problem.status)
            raise LoginFailedError(
                "the token endpoint refused the login: "
                + ("too many failed attempts" if problem.status == 429 else "invalid credentials"),
                status=problem.status,
                error=problem.error,
                description=problem.description,
                retry_after=retry_after(response),
            )
        raise problem.exception("the refresh" if refresh else "the login")

    def _fallback(self, pending: Pending, response: httpx.Response) -> Held | None:
        """The token to keep using while the endpoint is unavailable, if still valid."""
        fallback = pending.fallback
        if fallback is None or fallback.expires_at is None:
            return None
        now = self._monotonic()
        if now >= fallback.expires_at:
            return None
        self._pause_until = now + (retry_after(response) or _DEFAULT_PAUSE)
        _log.warning(
            "token endpoint unavailable (HTTP %d); the current access token stays in use "
            "until it expires",
            response.status_code,
        )
        return fallback

    def _accept(self, pending: Pending, answer: TokenAnswer) -> Held:
        expires_at = None if answer.expires_in is None else pending.sent_wall + answer.expires_in
        # RFC 6749 sec. 6: a refresh answer without a refresh token leaves the old one valid.
        refresh = answer.refresh_token or pending.refresh_token
        token = StoredToken(
            answer.access_token, refresh, pending.sent_wall, expires_at, answer.scope
        )
        held = self._hold(token, pending.sent_at, pending.sent_wall)
        # Held before it is saved: the server has rotated the refresh token, and a failed
        # save must not bring the old one back (see "A save that fails" above).
        self._held = held
        self._seed = None
        self._pause_until = -math.inf
        self._rejected = None
        _log.info(
            "%s for client %s",
            "logged in" if pending.grant == "password" else "refreshed the access token",
            self._client.client_id,
        )
        self._storage.save(token)
        return held

    def _refused(self) -> Pending:
        # Forgotten in memory before the storage is cleared: a refused token is never
        # accepted again, and sending it at every renewal would keep the client from
        # logging in for as long as the storage fails.
        self._held = None
        self._seed = None
        failure = self._clear()
        if self._credentials is None:
            _log.warning("refresh token refused (invalid_grant); a new login is required")
            raise LoginRequiredError(
                "the refresh token was refused (expired, revoked, or its session ended "
                "after reuse was detected); log in again"
            ) from failure
        _log.warning("refresh token refused (invalid_grant); logging in again")
        login = self._login(self._credentials, None)
        return login if failure is None else dataclasses.replace(login, storage_error=failure)

    def _clear(self) -> TokenStorageError | None:
        """Clear the storage; its error, for the caller to raise once it has done the rest."""
        try:
            self._storage.clear()
        except TokenStorageError as exc:
            # The message names the storage and the cause, never a token (see _errors).
            _log.warning("the token storage could not be cleared: %s", exc)
            return exc
        return None

    # -- logout --------------------------------------------------------------------------

    def revocation(self) -> Revocation | None:
        """Forget the tokens (in memory, then in the storage); the RFC 7009 request that
        ends their session, if there is one.

        If the storage cannot be cleared, the request is built all the same (the session
        must end at the server) and the storage's error comes with it, to be raised once
        the request was tried; with nothing to revoke, it is raised at once.
        """
        held = self._held
        token = held.token if held is not None else None
        self._held = None
        self._seed = None
        failure = self._clear()
        if token is None:
            if failure is not None:
                raise failure
            return None
        # Either token ends the whole session at a tokenward server; the refresh token
        # is the one that stands for the session at any RFC 7009 server.
        if token.refresh_token is not None:
            form = {"token": token.refresh_token, "token_type_hint": "refresh_token"}
        else:
            form = {"token": token.access_token, "token_type_hint": "access_token"}
        return Revocation(self._client.request(self._revocation_url, form), failure)

    @staticmethod
    def revoked(response: httpx.Response) -> None:
        """Raise :class:`TokenEndpointError` unless the revocation answer is 200."""
        if response.status_code != 200:
            raise parse_error(response).exception("the revocation")
        _log.info("logged out; the session was revoked")
