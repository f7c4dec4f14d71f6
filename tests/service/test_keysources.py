"""Key sources: JWKS files, the in-process key ring, and a JWKS served over real HTTP."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import json
import logging
import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tokenward.errors import ConfigurationError, InvalidKeyError, KeyNotFoundError
from tokenward.jose import Key, KeySet, jwt
from tokenward.service import (
    JWKSFetchError,
    KeyRingKeys,
    KeySource,
    RemoteJWKS,
    StaticKeys,
    TokenPolicy,
    TokenService,
    Verifier,
)
from tokenward.stores.memory import MemoryStore
from tokenward.testing import FrozenClock

ISSUER = "https://auth.test"
AUDIENCE = "api"
NOW = 1_800_000_000


def mint(key: Key, **overrides: Any) -> str:
    claims: dict[str, Any] = {
        "iss": ISSUER, "sub": "ada", "aud": AUDIENCE, "iat": NOW, "exp": NOW + 900,
        "jti": "j1", "sid": "s1", "scope": "read", "token_type": "access",
    }  # fmt: skip
    claims.update(overrides)
    return jwt.encode(claims, key, typ="at+jwt")


def jwks(*keys: Key) -> dict[str, Any]:
    return KeySet(k.public_key() for k in keys).to_jwks()


class JWKSServer:
    """A real HTTP server on 127.0.0.1 (ephemeral port) serving a JWKS the test controls."""

    def __init__(self, document: dict[str, Any], *, tls: ssl.SSLContext | None = None) -> None:
        self.document = document
        self.status = 200
        self.body: bytes | None = None  # overrides the JSON of ``document``
        self.headers: dict[str, str] = {"Cache-Control": "max-age=300"}
        self.send_length = True
        self.send_date = True  # False: no Date from the host's clock (a test may set its own)
        self.requests = 0
        self.paths: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                server.paths.append(self.path)
                body = server.body
                if body is None:
                    body = json.dumps(server.document).encode()
                self.send_response_only(server.status)
                if server.send_date:
                    self.send_header("Date", self.date_time_string())
                self.send_header("Content-Type", "application/jwk-set+json")
                if server.send_length:
                    self.send_header("Content-Length", str(len(body)))
                for name, value in server.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._http = HTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self._http.socket = tls.wrap_socket(self._http.socket, server_side=True)
        self.port = self._http.server_address[1]
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.port}/.well-known/jwks.json"
        self._thread = threading.Thread(
            target=self._http.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock(NOW)


@pytest.fixture
def k1() -> Key:
    return Key.generate("ES256", kid="k1")


@pytest.fixture
def server(k1: Key) -> Iterator[JWKSServer]:
    served = JWKSServer(jwks(k1))
    try:
        yield served
    finally:
        served.close()


@pytest.fixture
async def source(server: JWKSServer, clock: FrozenClock) -> AsyncIterator[RemoteJWKS]:
    async with RemoteJWKS(server.url, clock=clock) as remote:
        yield remote


def verifier_for(source: KeySource, clock: FrozenClock) -> Verifier:
    return Verifier(source, issuer=ISSUER, audience=AUDIENCE, clock=clock)


# -- StaticKeys --------------------------------------------------------------------------------


def test_static_keys_from_file_verifies(tmp_path: Path, k1: Key, clock: FrozenClock) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks(k1)))
    keys = StaticKeys.from_file(path)
    assert [key.kid for key in keys.key_set] == ["k1"]
    assert verifier_for(keys, clock).verify(mint(k1)).sub == "ada"


def test_static_keys_from_file_keeps_public_halves_only(tmp_path: Path, k1: Key) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(KeySet([k1]).to_jwks(private=True)))
    assert not any(key.is_private for key in StaticKeys.from_file(path).key_set)


def test_static_keys_from_file_accepts_hmac_keys(tmp_path: Path, clock: FrozenClock) -> None:
    secret = Key.generate("HS256", kid="h1")
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(KeySet([secret]).to_jwks(private=True)))
    assert verifier_for(StaticKeys.from_file(path), clock).verify(mint(secret)).sub == "ada"


@pytest.mark.parametrize(
    "content",
    [
        pytest.param(b'{"keys": [], "keys": []}', id="duplicate-member"),
        pytest.param(b"[]", id="array"),
        pytest.param(b'{"keys": {}}', id="keys-not-a-list"),
        pytest.param(b'{"keys": [{"kty": "EC", "crv": "P-256", "x": NaN}]}', id="nan"),
        pytest.param(b"\xef\xbb\xbf{}", id="bom"),
        pytest.param(b'{"keys": [{"kty": "XYZ", "kid": "a"}]}', id="unknown-kty"),
        pytest.param(b'{"keys": [' + b" " * 300_000 + b"]}", id="too-large"),
    ],
)
def test_static_keys_from_file_refuses_bad_documents(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "jwks.json"
    path.write_bytes(content)
    with pytest.raises(InvalidKeyError):
        StaticKeys.from_file(path)


def test_static_keys_needs_a_key_set() -> None:
    with pytest.raises(ConfigurationError):
        StaticKeys({"keys": []})  # type: ignore[arg-type]


# -- RemoteJWKS against a real HTTP server ---------------------------------------------------


async def test_remote_jwks_loads_and_verifies(
    server: JWKSServer, source: RemoteJWKS, k1: Key, clock: FrozenClock
) -> None:
    verifier = verifier_for(source, clock)
    # The first verify_async fetches the keys (the source starts empty).
    assert (await verifier.verify_async(mint(k1))).sub == "ada"
    assert server.requests == 1
    assert server.paths == ["/.well-known/jwks.json"]
    assert source.fetches == 1
    for _ in range(50):
        await verifier.verify_async(mint(k1))
    assert server.requests == 1


def bounded(server: JWKSServer, clock: FrozenClock) -> RemoteJWKS:
    """A source with small round bounds: min_interval 10, default 300, cap 3600."""
    return RemoteJWKS(
        server.url, clock=clock, min_interval=10, default_max_age=300, max_age_cap=3600
    )


@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        pytest.param({"Cache-Control": "public, max-age=120"}, 120, id="max-age"),
        pytest.param({"Cache-Control": "max-age=120", "Age": "100"}, 20, id="minus-age"),
        pytest.param({"Cache-Control": "max-age=5"}, 10, id="floor-min-interval"),
        pytest.param({"Cache-Control": "no-store"}, 10, id="no-store"),
        pytest.param({"Cache-Control": "no-cache, max-age=600"}, 10, id="no-cache"),
        pytest.param({}, 300, id="absent-default"),
        pytest.param({"Cache-Control": "max-age=abc"}, 300, id="invalid-default"),
        pytest.param({"Cache-Control": "max-age=999999"}, 3600, id="capped"),
        # RFC 9111 sec. 4.2.1: the most restrictive directive wins, in any position, and
        # of a directive given twice the first counts.
        pytest.param({"Cache-Control": "max-age=abc, no-store"}, 10, id="no-store-after-invalid"),
        pytest.param({"Cache-Control": "max-age=60, max-age=600"}, 60, id="first-max-age"),
    ],
)
async def test_cache_control_sets_freshness(
    server: JWKSServer, clock: FrozenClock, headers: dict[str, str], fresh_for: int
) -> None:
    server.headers = headers
    async with bounded(server, clock) as remote:
        await remote.load()
        assert remote.fresh_until == NOW + fresh_for


def http_date(at: float) -> str:
    return formatdate(at, usegmt=True)


TODAY, IN_30_MIN = http_date(NOW), http_date(NOW + 1800)


@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        pytest.param({"Date": TODAY, "Expires": IN_30_MIN}, 1800, id="expires"),
        # The server's clock is 10 minutes behind the verifier's: Expires minus Date counts.
        pytest.param(
            {"Date": http_date(NOW - 600), "Expires": http_date(NOW + 1200)}, 1800, id="skewed-date"
        ),
        pytest.param({"Expires": IN_30_MIN}, 1800, id="no-date-receive-time"),
        pytest.param({"Date": "yesterday", "Expires": IN_30_MIN}, 1800, id="bad-date-receive-time"),
        pytest.param({"Date": TODAY, "Expires": IN_30_MIN, "Age": "300"}, 1500, id="minus-age"),
        # s-maxage is for shared caches; a verifier's cache is private (RFC 9111 sec. 5.2.2.10).
        pytest.param({"Cache-Control": "s-maxage=60", "Expires": IN_30_MIN}, 1800, id="s-maxage"),
        # RFC 9110 sec. 5.6.7: the obsolete rfc850 and asctime forms are accepted too.
        pytest.param({"Expires": "Friday, 15-Jan-27 08:30:00 GMT"}, 1800, id="rfc850-date"),
        pytest.param({"Expires": "Fri Jan 15 08:30:00 2027"}, 1800, id="asctime-date"),
        pytest.param({"Expires": http_date(NOW + 10 * 86400)}, 3600, id="capped"),
        pytest.param({"Date": TODAY, "Expires": http_date(NOW - 3600)}, 10, id="in-the-past"),
        # RFC 9111 sec. 5.3: an invalid date, "0" above all, means already expired.
        pytest.param({"Expires": "0"}, 10, id="zero"),
        pytest.param({"Expires": "Fri, 15 Jan 2027 08:3\xb2:00 GMT"}, 10, id="non-ascii-digit"),
        pytest.param({"Expires": "Fri, 30 Feb 2027 08:30:00 GMT"}, 10, id="no-such-day"),
        # Cache-Control outranks Expires (RFC 9111 sec. 5.3), even an invalid max-age.
        pytest.param(
            {"Cache-Control": "max-age=120", "Expires": IN_30_MIN}, 120, id="max-age-wins"
        ),
        pytest.param(
            {"Cache-Control": "max-age=x", "Expires": IN_30_MIN}, 300, id="bad-max-age-wins"
        ),
        pytest.param({"Cache-Control": "no-cache", "Expires": IN_30_MIN}, 10, id="no-cache-wins"),
    ],
)
async def test_expires_sets_freshness_without_max_age(
    server: JWKSServer, clock: FrozenClock, headers: dict[str, str], fresh_for: int
) -> None:
    server.headers = headers
    server.send_date = False  # The Date, if any, is the test's.
    async with bounded(server, clock) as remote:
        await remote.load()
        assert remote.fresh_until == NOW + fresh_for


@pytest.mark.parametrize(
    ("headers", "fresh_for"),
    [
        # The latin-1 byte 0xB2 arrives as "²": str.isdigit() says yes, int() says no.
        pytest.param({"Cache-Control": "max-age=\xb2"}, 300, id="superscript-max-age"),
        pytest.param({"Cache-Control": "max-age=600", "Age": "\xb2"}, 600, id="superscript-age"),
        # UTF-8 Arabic-Indic digits: int() would read them as 12.
        pytest.param(
            {"Cache-Control": "max-age=" + "\u0661\u0662".encode().decode("latin-1")},
            300,
            id="arabic-indic-max-age",
        ),
        # int() refuses more than 4300 digits; RFC 9111 sec. 1.2.2 says 2^31.
        pytest.param({"Cache-Control": "max-age=" + "9" * 5000}, 3600, id="huge-max-age"),
        pytest.param({"Cache-Control": "max-age=600", "Age": "9" * 5000}, 10, id="huge-age"),
        # RFC 9111 sec. 5.1: of a list-valued Age the first member counts.
        pytest.param({"Cache-Control": "max-age=600", "Age": "100, 200"}, 500, id="age-list"),
    ],
)
async def test_malformed_cache_numbers_never_escape_verify_async(
    server: JWKSServer, k1: Key, clock: FrozenClock, headers: dict[str, str], fresh_for: int
) -> None:
    server.headers = headers
    async with bounded(server, clock) as remote:
        verifier = verifier_for(remote, clock)
        assert (await verifier.verify_async(mint(k1))).sub == "ada"
        assert remote.fresh_until == NOW + fresh_for
        # The set is fresh: another token's cache miss does not fetch again.
        assert (await verifier.verify_async(mint(k1, jti="j2"))).sub == "ada"
        assert server.requests == 1


async def test_stale_set_is_refetched_on_the_next_miss(
    server: JWKSServer, source: RemoteJWKS, k1: Key, clock: FrozenClock
) -> None:
    server.headers = {"Cache-Control": "max-age=120"}
    verifier = verifier_for(source, clock)
    await verifier.verify_async(mint(k1, jti="a"))
    clock.advance(119)
    await verifier.verify_async(mint(k1, jti="b"))
    assert server.requests == 1
    clock.advance(1)
    await verifier.verify_async(mint(k1, jti="c"))
    assert server.requests == 2
    # A cached token does not even look at freshness.
    clock.advance(500)
    await verifier.verify_async(mint(k1, jti="c"))
    assert server.requests == 2


async def test_flood_of_bogus_kids_fetches_at_most_once_per_interval(
    server: JWKSServer, source: RemoteJWKS, k1: Key, clock: FrozenClock
) -> None:
    verifier = verifier_for(source, clock)
    await verifier.verify_async(mint(k1))
    clock.advance(30)  # min_interval has passed since the load: one refetch is allowed.
    bogus = [mint(Key.generate("ES256", kid=f"bogus-{i}")) for i in range(100)]
    results = await asyncio.gather(
        *(verifier.verify_async(token) for token in bogus), return_exceptions=True
    )
    assert all(isinstance(result, KeyNotFoundError) for result in results)
    assert server.requests == 2
    assert source.unknown_kid_refetches == 1
    for token in bogus:
        with pytest.raises(KeyNotFoundError):
            await verifier.verify_async(token)
    assert server.requests == 2
    assert source.rate_limited >= 100
    clock.advance(30)
    with pytest.raises(KeyNotFoundError):
        await verifier.verify_async(bogus[0])
    assert server.requests == 3
    # The real key still verifies throughout.
    assert (await verifier.verify_async(mint(k1))).sub == "ada"


async def test_key_rotation_is_picked_up_on_unknown_kid(
    server: JWKSServer, source: RemoteJWKS, k1: Key, clock: FrozenClock
) -> None:
    verifier = verifier_for(source, clock)
    await verifier.verify_async(mint(k1))
    k2 = Key.generate("ES256", kid="k2")
    server.document = jwks(k1, k2)
    token = mint(k2)
    clock.advance(5)
    with pytest.raises(KeyNotFoundError):  # within min_interval of the last fetch
        await verifier.verify_async(token)
    assert server.requests == 1
    clock.advance(25)
    assert (await verifier.verify_async(token)).sub == "ada"
    assert server.requests == 2
    assert verifier.stats.key_refreshes == 2
    # The sync path uses what was fetched: no I/O.
    assert verifier.verify(mint(k2, jti="x")).sub == "ada"


async def test_key_removed_from_served_set_stops_cached_tokens(
    server: JWKSServer, source: RemoteJWKS, k1: Key, clock: FrozenClock
) -> None:
    verifier = verifier_for(source, clock)
    token = mint(k1)
    await verifier.verify_async(token)
    k2 = Key.generate("ES256", kid="k2")
    server.document = jwks(k2)
    clock.advance(300)
    await source.ensure_fresh()
    with pytest.raises(KeyNotFoundError):
        verifier.verify(token)


async def test_unchanged_document_keeps_cached_tokens(
    server: JWKSServer, source: RemoteJWKS, k1: Key, clock: FrozenClock
) -> None:
    verifier = verifier_for(source, clock)
    token = mint(k1)
    await verifier.verify_async(token)
    before = source.key_set
    clock.advance(300)
    await source.ensure_fresh()
    assert server.requests == 2
    assert source.key_set is before
    verifier.verify(token)
    assert verifier.stats.signature_verifications == 1


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param((500, None, True), id="http-500"),
        pytest.param((200, b"<html>oops</html>", True), id="not-json"),
        pytest.param((200, b"[]", True), id="json-array"),
        pytest.param((200, b'{"keys": [], "keys": []}', True), id="duplicate-member"),
        pytest.param((200, b'{"keys": [' + b" " * 300_000 + b"]}", True), id="too-large"),
        pytest.param((200, b'{"keys": [' + b" " * 300_000 + b"]}", False), id="too-large-chunk"),
        pytest.param(
            (
                200,
                json.dumps(KeySet([Key.generate("HS256", kid="h")]).to_jwks(private=True)).encode(),
                True,
            ),
            id="published-hmac-secret",
        ),
    ],
)
async def test_failed_fetch_keeps_last_good_set(
    k1: Key,
    clock: FrozenClock,
    caplog: pytest.LogCaptureFixture,
    failure: tuple[int, bytes | None, bool],
) -> None:
    server = JWKSServer(jwks(k1))
    try:
        # Credentials in the URL must never reach the log.
        url = server.url.replace("://", "://user:s3cret-pw@") + "?access=s3cret-q"
        async with RemoteJWKS(url, clock=clock) as remote:
            verifier = verifier_for(remote, clock)
            await verifier.verify_async(mint(k1))
            good = remote.key_set
            server.status, server.body, server.send_length = failure
            clock.advance(300)
            with caplog.at_level(logging.WARNING, logger="tokenward.keys"):
                await remote.ensure_fresh()
            assert remote.fetch_failures == 1
            assert remote.key_set is good
            assert (await verifier.verify_async(mint(k1, jti="new"))).sub == "ada"
            assert "JWKS fetch" in caplog.text
            assert all("s3cret-pw" not in r.getMessage() for r in caplog.records)
            assert all(
                "s3cret" not in r.getMessage()
                for r in caplog.records
                if r.name.startswith("tokenward")
            )
            # The failure is retried after min_interval, not on every request.
            assert server.requests == 2
            clock.advance(29)
            await remote.ensure_fresh()
            assert server.requests == 2
            clock.advance(1)
            server.status, server.body, server.send_length = 200, None, True
            await remote.ensure_fresh()
            assert server.requests == 3
            assert remote.fetches == 2
    finally:
        server.close()


async def test_load_raises_when_the_server_refuses(server: JWKSServer, source: RemoteJWKS) -> None:
    server.status = 404
    with pytest.raises(JWKSFetchError) as caught:
        await source.load()
    assert caught.value.code == "jwks_unavailable"
    assert len(source.key_set) == 0


async def test_unreachable_server_is_a_fetch_error(clock: FrozenClock) -> None:
    probe = HTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()  # Nothing listens on this port now.
    async with RemoteJWKS(f"http://127.0.0.1:{port}/jwks", clock=clock) as remote:
        with pytest.raises(JWKSFetchError):
            await remote.load()
        assert remote.fetch_failures == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://auth.example/jwks",
        "http://10.0.0.1/jwks",
        "ftp://auth.example/jwks",
        "https:///jwks",
        "jwks.json",
    ],
)
def test_insecure_or_malformed_urls_are_refused(url: str) -> None:
    with pytest.raises(ConfigurationError):
        RemoteJWKS(url)


@pytest.mark.parametrize(
    "url",
    [
        "https://auth.example/.well-known/jwks.json",
        "http://127.0.0.1:8000/jwks",
        "http://localhost/jwks",
        "http://[::1]:8000/jwks",
    ],
)
def test_https_and_loopback_urls_are_accepted(url: str) -> None:
    RemoteJWKS(url)


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_tls_certificate_is_verified(tmp_path: Path, k1: Key, clock: FrozenClock) -> None:
    cert_path, key_path = self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    server = JWKSServer(jwks(k1), tls=context)
    try:
        # The default client verifies certificates: a self-signed one is refused.
        async with RemoteJWKS(server.url, clock=clock) as remote:
            with pytest.raises(JWKSFetchError):
                await remote.load()
        assert server.requests == 0
        # A client that trusts this certificate fetches over TLS.
        trusting = ssl.create_default_context(cafile=str(cert_path))
        async with httpx.AsyncClient(verify=trusting) as client:
            remote = RemoteJWKS(server.url, clock=clock, client=client)
            keys = await remote.load()
            assert [key.kid for key in keys] == ["k1"]
            await remote.aclose()  # not ours: must leave the client open
            assert not client.is_closed
    finally:
        server.close()


# -- the TokenService key ring served over HTTP -------------------------------------------------


async def test_token_service_jwks_served_and_rotated(clock: FrozenClock) -> None:
    service = await TokenService.create(
        MemoryStore(), TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    server = JWKSServer(service.keyring.jwks())
    try:
        async with RemoteJWKS(server.url, clock=clock) as remote:
            verifier = verifier_for(remote, clock)
            pair = await service.issue("ada", scope="read")
            assert (await verifier.verify_async(pair.access_token, scopes="read")).sub == "ada"
            await service.keyring.rotate()
            server.document = service.keyring.jwks()
            clock.advance(60)
            rotated = await service.issue("ada")
            assert (await verifier.verify_async(rotated.access_token)).sid == rotated.sid
            assert (await verifier.verify_async(pair.access_token)).sid == pair.sid
            assert server.requests == 2
    finally:
        server.close()


# -- KeyRingKeys --------------------------------------------------------------------------------


async def test_keyring_keys_follow_rotation_at_once(clock: FrozenClock) -> None:
    service = await TokenService.create(
        MemoryStore(), TokenPolicy(issuer=ISSUER, audience=AUDIENCE), clock=clock
    )
    verifier = verifier_for(KeyRingKeys(service.keyring), clock)
    await service.keyring.rotate()
    pair = await service.issue("ada")
    assert verifier.verify(pair.access_token).sub == "ada"


async def test_keyring_keys_reload_when_another_instance_rotated(clock: FrozenClock) -> None:
    store = MemoryStore()
    policy = TokenPolicy(issuer=ISSUER, audience=AUDIENCE)
    here = await TokenService.create(store, policy, clock=clock)
    there = await TokenService.create(store, policy, clock=clock)
    await there.keyring.rotate()
    pair = await there.issue("ada")
    keys = KeyRingKeys(here.keyring, clock=clock)
    verifier = verifier_for(keys, clock)
    with pytest.raises(KeyNotFoundError):
        verifier.verify(pair.access_token)  # sync: no store I/O, so no reload
    assert (await verifier.verify_async(pair.access_token)).sub == "ada"
    assert keys.reloads == 1
    # Bogus kids cannot turn into store reads: one reload per min_interval at most.
    operations = store.operations
    for i in range(20):
        with pytest.raises(KeyNotFoundError):
            await verifier.verify_async(mint(Key.generate("ES256", kid=f"bogus-{i}")))
    assert store.operations == operations
    assert keys.reloads == 1
