"""The Flask extension and decorator, through Flask's test client."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from flask import Flask, g
from werkzeug.test import TestResponse

from tests.integrations.conftest import (
    AUDIENCE,
    EXPIRED,
    INVALID,
    ISSUER,
    MALFORMED,
    MISSING,
    REVOKED,
    bearer,
    insufficient,
)
from tokenward.errors import ConfigurationError
from tokenward.integrations.flask import (
    BackgroundKeyRefresh,
    Tokenward,
    current_claims,
    require_token,
)
from tokenward.jose import Key, KeySet, jwt
from tokenward.service import JWKSFetchError, RemoteJWKS, TokenPair, TokenService, Verifier
from tokenward.testing import FrozenClock


def make_app(verifier: Verifier | None) -> Flask:
    app = Flask(__name__)
    if verifier is not None:
        Tokenward(app, verifier)

    @app.get("/items")
    @require_token(scopes=["read"])
    def items() -> Any:
        return {"sub": current_claims().sub, "sid": g.tokenward.sid}

    @app.get("/bare")
    @require_token
    def bare() -> Any:
        return {"sub": current_claims().sub}

    @app.get("/admin")
    @require_token(scopes="admin read")
    def admin() -> Any:
        return {"sub": current_claims().sub}

    @app.get("/whoami")
    @require_token(optional=True, scopes=["admin"])
    def whoami() -> Any:
        return {"sub": g.tokenward.sub if g.tokenward else None}

    return app


def get(app: Flask, path: str, headers: Any = None) -> TestResponse:
    return app.test_client().get(path, headers=headers)


def assert_refused(response: TestResponse, status: int, challenge: str, error: str) -> None:
    assert response.status_code == status
    assert response.headers.getlist("WWW-Authenticate") == [challenge]
    assert response.headers["Cache-Control"] == "no-store"
    assert response.mimetype == "application/json"
    assert response.get_json() == {"error": error}


def test_valid_token(verifier: Verifier, pair: TokenPair) -> None:
    app = make_app(verifier)
    assert get(app, "/items", bearer(pair.access_token)).get_json() == {
        "sub": "ada",
        "sid": pair.sid,
    }
    assert get(app, "/bare", bearer(pair.access_token)).get_json() == {"sub": "ada"}
    response = get(app, "/items", {"Authorization": "bEaReR   " + pair.access_token})
    assert response.status_code == 200


def test_missing_and_other_scheme(verifier: Verifier) -> None:
    app = make_app(verifier)
    assert_refused(get(app, "/items"), 401, MISSING, "unauthorized")
    assert_refused(
        get(app, "/items", {"Authorization": "Basic YTpi"}), 401, MISSING, "unauthorized"
    )


@pytest.mark.parametrize("value", ["Bearer", "Bearer a b", "Bearer a,b"])
def test_malformed_header(verifier: Verifier, value: str) -> None:
    response = get(make_app(verifier), "/items", {"Authorization": value})
    assert_refused(response, 400, MALFORMED, "invalid_request")


def test_expired_revoked_and_wrong_audience(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    app = make_app(verifier)
    key = service.keyring.current  # Signed right, addressed to another API.
    claims = verifier.verify(pair.access_token).claims
    foreign = jwt.encode({**claims, "aud": "another-api"}, key, typ="at+jwt")
    assert_refused(get(app, "/items", bearer(foreign)), 401, INVALID, "invalid_token")
    clock.advance(900)
    assert_refused(get(app, "/items", bearer(pair.access_token)), 401, EXPIRED, "invalid_token")


async def test_revoked(verifier: Verifier, service: TokenService, pair: TokenPair) -> None:
    app = make_app(verifier)
    assert get(app, "/items", bearer(pair.access_token)).status_code == 200
    await service.revoke_session(pair.sid)
    assert_refused(get(app, "/items", bearer(pair.access_token)), 401, REVOKED, "invalid_token")


def test_insufficient_scope(verifier: Verifier, pair: TokenPair) -> None:
    response = get(make_app(verifier), "/admin", bearer(pair.access_token))
    assert_refused(response, 403, insufficient("admin read"), "insufficient_scope")


def test_optional(verifier: Verifier, pair: TokenPair) -> None:
    app = make_app(verifier)
    assert get(app, "/whoami").get_json() == {"sub": None}
    assert get(app, "/whoami", bearer(pair.access_token)).get_json() == {"sub": "ada"}
    assert_refused(get(app, "/whoami", bearer("a.b.c")), 401, INVALID, "invalid_token")


def test_init_app_factory_and_missing_extension(verifier: Verifier, pair: TokenPair) -> None:
    extension = Tokenward()
    app = make_app(None)
    with pytest.raises(ConfigurationError, match="Verifier"):
        extension.init_app(app)
    extension.init_app(app, verifier)
    assert get(app, "/items", bearer(pair.access_token)).status_code == 200
    bare = make_app(None)
    bare.testing = True
    with pytest.raises(ConfigurationError, match="was not set up"):
        get(bare, "/items", bearer(pair.access_token))


def test_current_claims_outside_a_protected_view() -> None:
    app = Flask(__name__)
    with app.app_context(), pytest.raises(LookupError, match="require_token"):
        current_claims()


# -- keys in a synchronous app: a remote JWKS refreshed by a background thread --------------


class _JWKS:
    """A real JWKS endpoint on a loopback port (stdlib server, in a thread)."""

    def __init__(self, keys: KeySet) -> None:
        self.document = json.dumps(keys.to_jwks()).encode()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Cache-Control", "max-age=0")
                self.send_header("Content-Length", str(len(owner.document)))
                self.end_headers()
                self.wfile.write(owner.document)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def jwks_server() -> Iterator[tuple[_JWKS, Key]]:
    key = Key.generate("ES256", kid="k1")
    server = _JWKS(KeySet([key.public_key()]))
    try:
        yield server, key
    finally:
        server.close()


def mint(key: Key) -> str:
    import time

    now = int(time.time())
    claims = {
        "iss": ISSUER, "sub": "ada", "aud": AUDIENCE, "iat": now, "nbf": now,
        "exp": now + 900, "jti": "j1", "sid": "s1", "scope": "read", "token_type": "access",
    }  # fmt: skip
    return jwt.encode(claims, key, typ="at+jwt")


def test_background_refresh_loads_and_follows_a_remote_jwks(
    jwks_server: tuple[_JWKS, Key],
) -> None:
    server, key = jwks_server
    source = RemoteJWKS(server.url, min_interval=0.0)
    verifier = Verifier(source, issuer=ISSUER, audience=AUDIENCE)
    with BackgroundKeyRefresh(source, interval=0.02) as refresher:
        app = make_app(verifier)
        assert get(app, "/items", bearer(mint(key))).get_json()["sub"] == "ada"
        # The auth server rotates: the refresher picks the new key up between requests.
        new_key = Key.generate("ES256", kid="k2")
        server.document = json.dumps(KeySet([new_key.public_key()]).to_jwks()).encode()
        deadline = threading.Event()
        for _ in range(500):  # Bounded: at most 10 s for a real fetch to land.
            if "k2" in [k.kid for k in source.key_set]:
                break
            deadline.wait(0.02)
        assert "k2" in [k.kid for k in source.key_set]
        assert get(app, "/items", bearer(mint(new_key))).status_code == 200
        assert get(app, "/items", bearer(mint(key))).status_code == 401
        assert refresher.checks >= 1


def test_background_refresh_start_fails_when_the_first_load_fails() -> None:
    source = RemoteJWKS("http://127.0.0.1:9/jwks", timeout=2.0)
    with pytest.raises(JWKSFetchError):
        BackgroundKeyRefresh(source).start()


def test_background_refresh_start_raises_any_first_load_error_at_once() -> None:
    # A transport failing with something other than an httpx error (a bug, a missing
    # module): start() raises it at once instead of waiting out its timeout.
    def broken(request: httpx.Request) -> httpx.Response:
        raise LookupError("the transport is broken")

    client = httpx.AsyncClient(transport=httpx.MockTransport(broken))
    refresher = BackgroundKeyRefresh(RemoteJWKS("http://127.0.0.1/jwks", client=client))
    with pytest.raises(LookupError, match="broken"):
        refresher.start(timeout=5.0)
