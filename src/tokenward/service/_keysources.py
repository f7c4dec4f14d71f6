"""Key sources: where a :class:`~tokenward.service.Verifier` gets its verification keys.

A source hands out its current :class:`~tokenward.jose.KeySet` with no I/O (the
``key_set`` attribute), and may be asked, from async code only, to bring it up to date:

* :class:`StaticKeys`: a fixed set, or one read once from a JWKS file.
* :class:`KeyRingKeys`: the in-process :class:`~tokenward.service.KeyRing` of an app that
  embeds the token service; always current. An unknown ``kid`` reloads the ring from the
  store (another instance may have rotated), at most once per ``min_interval``.
* :class:`RemoteJWKS`: the auth server's JWKS endpoint over HTTPS, cached as long as its
  ``Cache-Control: max-age`` or ``Expires`` says (clamped), refetched when stale, and
  refetched on an unknown ``kid`` at most once per ``min_interval``, so a flood of tokens
  with made-up ``kid`` s costs the JWKS server one request per interval, not one per token.

Every JWKS document is parsed strictly (duplicate members, non-finite numbers and the
like are refused, and :meth:`KeySet.from_jwks` refuses duplicate ``kid`` s and unknown
key types); a document that fails is ignored as a whole and the last good set is kept.
Private members in a document are dropped: verifiers only ever hold public halves.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import os
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit, urlunsplit

from tokenward.errors import (
    ConfigurationError,
    InvalidKeyError,
    MalformedTokenError,
    TokenwardError,
)
from tokenward.jose import KeySet
from tokenward.jose._json import loads_object
from tokenward.service._clock import Clock, SystemClock
from tokenward.service._httpcache import freshness_lifetime, parse_digits
from tokenward.service._keyring import KeyRing
from tokenward.stores.base import StoreError

if TYPE_CHECKING:
    import httpx

__all__ = ["JWKSFetchError", "KeyRingKeys", "KeySource", "RemoteJWKS", "StaticKeys"]

_log = logging.getLogger("tokenward.keys")

#: The largest JWKS document accepted, from a file or over HTTP. Real documents hold a
#: handful of keys (an RSA-4096 JWK is under 1 KiB); 256 KiB leaves ample room.
DEFAULT_MAX_BYTES = 256 * 1024


class JWKSFetchError(TokenwardError):
    """The JWKS could not be fetched or was unusable; the last good key set stays in use."""

    code = "jwks_unavailable"


@runtime_checkable
class KeySource(Protocol):
    """Where a verifier's keys come from. ``key_set`` is read on every verification."""

    @property
    def key_set(self) -> KeySet:
        """The keys to verify with right now (no I/O)."""
        ...

    async def ensure_fresh(self) -> None:
        """Bring the set up to date if it is stale; never raises for fetch failures."""
        ...

    async def refresh_for_unknown_kid(self) -> bool:
        """A token named a ``kid`` not in the set: refetch if the rate limit allows.

        Returns True when a refetch ran (so retrying the token may now succeed).
        """
        ...


def _parse_jwks(data: bytes, *, what: str, allow_symmetric: bool) -> tuple[dict[str, Any], KeySet]:
    """Parse a JWKS document strictly; return it and its keys (public halves only).

    Raises :class:`InvalidKeyError` for anything unusable.
    """
    try:
        document = loads_object(data, what)
    except MalformedTokenError as exc:
        raise InvalidKeyError(exc.message) from None
    keys = KeySet.from_jwks(document)
    if any(key.kty == "oct" for key in keys):
        if not allow_symmetric:
            # An HMAC secret in a published JWKS is a leaked secret: anyone who can read
            # the document can mint tokens. Refuse it rather than trust it.
            raise InvalidKeyError(f"{what} contains a symmetric (oct) key")
        return document, keys
    return document, keys.public()


class StaticKeys:
    """A fixed key set, from memory or from a JWKS file read once.

    >>> from tokenward.jose import Key
    >>> StaticKeys(KeySet([Key.generate("ES256", kid="k1").public_key()])).key_set
    KeySet(kids=['k1'])
    """

    __slots__ = ("_keys",)

    def __init__(self, keys: KeySet) -> None:
        if not isinstance(keys, KeySet):
            raise ConfigurationError("StaticKeys needs a KeySet")
        self._keys = keys

    @classmethod
    def from_file(
        cls, path: str | os.PathLike[str], *, max_bytes: int = DEFAULT_MAX_BYTES
    ) -> StaticKeys:
        """Read a JWKS JSON file (``{"keys": [...]}``); private members are dropped.

        A file may hold HMAC (``oct``) keys, for deployments that share a secret through
        a secrets manager; a remote JWKS never may.
        """
        with open(path, "rb") as handle:
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            raise InvalidKeyError(f"the JWKS file is larger than {max_bytes} bytes")
        return cls(_parse_jwks(data, what="the JWKS file", allow_symmetric=True)[1])

    @property
    def key_set(self) -> KeySet:
        """The fixed key set."""
        return self._keys

    async def ensure_fresh(self) -> None:
        """Nothing to do: the set never changes."""

    async def refresh_for_unknown_kid(self) -> bool:
        """Nothing to refetch: the set never changes."""
        return False


class KeyRingKeys:
    """The verification keys of an in-process :class:`KeyRing` (rotation shows at once).

    An unknown ``kid`` may mean another instance rotated the keys in the shared store;
    :meth:`refresh_for_unknown_kid` then reloads the ring, at most once per
    ``min_interval`` seconds (one store read), so bogus ``kid`` s cannot load the store.
    """

    __slots__ = ("_clock", "_last_reload", "_lock", "_min_interval", "_ring", "reloads")

    def __init__(
        self, keyring: KeyRing, *, clock: Clock | None = None, min_interval: float = 30.0
    ) -> None:
        if not isinstance(keyring, KeyRing):
            raise ConfigurationError("KeyRingKeys needs a KeyRing")
        _check_seconds("min_interval", min_interval)
        self._ring = keyring
        self._clock: Clock = clock or SystemClock()
        self._min_interval = float(min_interval)
        self._last_reload = -math.inf
        self._lock = asyncio.Lock()
        self.reloads = 0
        """How many times an unknown ``kid`` reloaded the ring from the store."""

    @property
    def key_set(self) -> KeySet:
        """The ring's published keys (next, current, retired), public halves."""
        return self._ring.verification_keys

    async def ensure_fresh(self) -> None:
        """Nothing to do: the ring is updated in place by rotation."""

    async def refresh_for_unknown_kid(self) -> bool:
        """Reload the ring from the store, unless that happened within ``min_interval``."""
        if self._clock.now() < self._last_reload + self._min_interval:
            return False
        async with self._lock:
            now = self._clock.now()
            if now < self._last_reload + self._min_interval:
                return True  # Another caller reloaded while this one waited.
            self._last_reload = now
            try:
                await self._ring.load()
            except StoreError as exc:
                _log.warning("key ring reload failed (%s); keeping the loaded keys", exc.code)
                return False
            self.reloads += 1
            return True


def _check_seconds(name: str, value: float) -> None:
    if type(value) not in (int, float) or not 0 <= value < math.inf:
        raise ConfigurationError(f"{name} must be a finite number of seconds >= 0")


def _check_url(url: str) -> str:
    """Validate the JWKS URL; return a form safe to log (no credentials, no query)."""
    if not isinstance(url, str):
        raise ConfigurationError("the JWKS URL must be a string")
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme == "http":
        # Keys fetched over plain HTTP can be replaced in transit, and whoever replaces
        # them can mint tokens every verifier accepts. Only loopback is exempt (tests,
        # a sidecar on the same host).
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ConfigurationError("the JWKS URL must use https (http only for loopback)")
    elif parts.scheme != "https":
        raise ConfigurationError("the JWKS URL must use https")
    if not host:
        raise ConfigurationError("the JWKS URL has no host")
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


class RemoteJWKS:
    """A JWKS fetched over HTTPS, cached per the server's headers, with rate limits.

    >>> source = RemoteJWKS("https://auth.example/.well-known/jwks.json")
    >>> # await source.load()   # optional: fail fast at start-up if the server is down

    * Freshness (RFC 9111 sec. 4.2, as a private cache): ``Cache-Control: max-age``, or
      without it ``Expires`` minus ``Date`` (the receive time when there is no ``Date``),
      minus ``Age``, clamped to ``[min_interval, max_age_cap]``. ``no-store``/``no-cache``,
      an ``Expires`` in the past and an invalid ``Expires`` count as 0 (so
      ``min_interval``); neither header, or an invalid ``max-age``, means
      ``default_max_age``.
    * A stale set is refetched by :meth:`ensure_fresh` (the verifier calls it on a cache
      miss in ``verify_async``). Until the refetch completes the stale set stays in use.
    * An unknown ``kid`` refetches at most once per ``min_interval`` (counted in
      ``unknown_kid_refetches``; refused requests in ``rate_limited``).
    * Failures (network, HTTP status, size over ``max_bytes``, a document that does not
      parse) keep the last good set, are logged without the body or any credentials in the
      URL, are counted in ``fetch_failures``, and are retried after ``min_interval``.

    Without ``client`` an ``httpx.AsyncClient`` with TLS certificate verification, no
    redirects and a ``timeout`` is created (and closed by :meth:`aclose`). A client you
    pass is used as configured: keep its TLS verification on.
    """

    def __init__(
        self,
        url: str,
        *,
        client: httpx.AsyncClient | None = None,
        clock: Clock | None = None,
        min_interval: float = 30.0,
        default_max_age: float = 300.0,
        max_age_cap: float = 86400.0,
        max_bytes: int = DEFAULT_MAX_BYTES,
        timeout: float = 5.0,
    ) -> None:
        self._display_url = _check_url(url)
        for name, value in (
            ("min_interval", min_interval),
            ("default_max_age", default_max_age),
            ("max_age_cap", max_age_cap),
            ("timeout", timeout),
        ):
            _check_seconds(name, value)
        if max_age_cap < min_interval:
            raise ConfigurationError("max_age_cap must be at least min_interval")
        if type(max_bytes) is not int or max_bytes < 1:
            raise ConfigurationError("max_bytes must be a positive int")
        # Credentials in the URL travel as an Authorization header instead: httpx logs
        # request URLs at INFO, and a password must never reach a log.
        parts = urlsplit(url)
        self._auth: tuple[str, str] | None = None
        if parts.username is not None or parts.password is not None:
            self._auth = (unquote(parts.username or ""), unquote(parts.password or ""))
            url = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        self._url = url
        self._client = client
        self._own_client = client is None
        self._clock: Clock = clock or SystemClock()
        self._min_interval = float(min_interval)
        self._default_max_age = float(default_max_age)
        self._max_age_cap = float(max_age_cap)
        self._max_bytes = max_bytes
        self._timeout = float(timeout)
        self._keys = KeySet([])
        self._document: dict[str, Any] | None = None
        self._fresh_until = -math.inf
        self._last_attempt = -math.inf
        self._lock = asyncio.Lock()
        self.fetches = 0
        """Successful fetches."""
        self.fetch_failures = 0
        """Fetches that failed (the last good set stayed in use)."""
        self.unknown_kid_refetches = 0
        """Fetches triggered by a token with an unknown ``kid``."""
        self.rate_limited = 0
        """Unknown-``kid`` refetches refused because one ran within ``min_interval``."""

    def __repr__(self) -> str:
        return f"RemoteJWKS({self._display_url!r}, kids={[k.kid for k in self._keys]!r})"

    @property
    def key_set(self) -> KeySet:
        """The last good key set (empty until the first successful fetch)."""
        return self._keys

    @property
    def fresh_until(self) -> float:
        """Clock time until which the set counts as fresh (``-inf`` before any fetch)."""
        return self._fresh_until

    async def load(self) -> KeySet:
        """Fetch now, whatever the cache says; raise :class:`JWKSFetchError` on failure."""
        async with self._lock:
            await self._fetch()
        return self._keys

    async def ensure_fresh(self) -> None:
        """Refetch if the set is stale and no attempt ran within ``min_interval``."""
        now = self._clock.now()
        if now < self._fresh_until or now < self._last_attempt + self._min_interval:
            return
        async with self._lock:
            now = self._clock.now()
            if now < self._fresh_until or now < self._last_attempt + self._min_interval:
                return  # Another caller fetched while this one waited for the lock.
            await self._fetch_quietly()

    async def refresh_for_unknown_kid(self) -> bool:
        """Refetch for an unknown ``kid``, at most once per ``min_interval``."""
        if self._clock.now() < self._last_attempt + self._min_interval:
            self.rate_limited += 1
            return False
        async with self._lock:
            if self._clock.now() < self._last_attempt + self._min_interval:
                # A concurrent caller fetched while this one waited: its result is in.
                return True
            self.unknown_kid_refetches += 1
            return await self._fetch_quietly()

    async def aclose(self) -> None:
        """Close the HTTP client if this source created it."""
        if self._own_client and self._client is not None:
            await self._client.aclose()
            self._client = None

    async def __aenter__(self) -> RemoteJWKS:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- fetching -----------------------------------------------------------------------

    async def _fetch_quietly(self) -> bool:
        try:
            await self._fetch()
        except JWKSFetchError as exc:
            _log.warning(
                "JWKS fetch from %s failed (%s); keeping the last good key set (%d keys)",
                self._display_url,
                exc.message,
                len(self._keys),
            )
            return False
        return True

    async def _fetch(self) -> None:
        now = self._clock.now()
        self._last_attempt = now
        try:
            data, headers = await self._get()
            document, keys = _parse_jwks(data, what="the JWKS", allow_symmetric=False)
        except JWKSFetchError:
            self.fetch_failures += 1
            raise
        except (InvalidKeyError, MalformedTokenError) as exc:
            self.fetch_failures += 1
            raise JWKSFetchError(f"the JWKS is unusable: {exc.message}") from None
        lifetime = freshness_lifetime(headers, received=now)
        if lifetime is None:
            lifetime = self._default_max_age
        self.fetches += 1
        # Keep the same KeySet object when nothing changed: a verifier clears its
        # verified-token cache when the set object changes.
        if document != self._document:
            self._keys = keys
            self._document = document
            _log.info("JWKS from %s loaded: kids %s", self._display_url, [key.kid for key in keys])
        self._fresh_until = now + min(max(lifetime, self._min_interval), self._max_age_cap)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            self._client = httpx.AsyncClient(
                verify=True, follow_redirects=False, timeout=self._timeout
            )
        return self._client

    async def _get(self) -> tuple[bytes, httpx.Headers]:
        import httpx

        client = self._http()
        headers = {"Accept": "application/jwk-set+json, application/json"}
        try:
            request = client.stream("GET", self._url, headers=headers, auth=self._auth or None)
            async with request as response:
                if response.status_code != 200:
                    raise JWKSFetchError(f"HTTP status {response.status_code}")
                declared = parse_digits(
                    response.headers.get("content-length", ""), cap=self._max_bytes + 1
                )
                if declared is not None and declared > self._max_bytes:
                    raise JWKSFetchError(f"the JWKS is larger than {self._max_bytes} bytes")
                body = bytearray()
                # Counted after content decoding, so a compressed bomb is cut off too.
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > self._max_bytes:
                        raise JWKSFetchError(f"the JWKS is larger than {self._max_bytes} bytes")
                return bytes(body), response.headers
        except httpx.HTTPError as exc:
            # The exception text can hold the full URL; only its type is reported.
            raise JWKSFetchError(f"request failed: {type(exc).__name__}") from None
