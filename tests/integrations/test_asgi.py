"""TokenwardMiddleware through real Starlette apps (httpx.ASGITransport, TestClient)."""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import StarletteDeprecationWarning
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

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
from tokenward.integrations import SlidingConfig, TokenwardMiddleware
from tokenward.service import (
    KeyRingKeys,
    RemoteJWKS,
    TokenPair,
    TokenPolicy,
    TokenService,
    Verifier,
)
from tokenward.stores.memory import MemoryStore
from tokenward.testing import FrozenClock

with warnings.catch_warnings():
    # Starlette 1.x deprecates its test client on httpx in favour of the "httpx2" fork;
    # httpx is what the project installs. The client is only used for websockets.
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient, WebSocketDenialResponse

# -- the app under test -----------------------------------------------------------------


async def me(request: Request) -> Response:
    claims = request.scope["tokenward"]
    if claims is None:
        return JSONResponse({"sub": None})
    return JSONResponse({"sub": claims.sub, "sid": claims.sid, "scopes": sorted(claims.scopes)})


async def cacheable(request: Request) -> Response:
    return JSONResponse(
        {"sub": request.scope["tokenward"].sub}, headers={"Cache-Control": "public, max-age=60"}
    )


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_json({"sub": websocket.scope["tokenward"].sub})
    await websocket.close()


def make_app(verifier: Verifier, **options: Any) -> Starlette:
    routes = [
        Route("/me", me),
        Route("/public", me),
        Route("/open/{rest:path}", me),
        Route("/slide/me", me),
        Route("/slide/cacheable", cacheable),
        WebSocketRoute("/ws", echo),
    ]
    middleware = [Middleware(TokenwardMiddleware, verifier=verifier, **options)]
    return Starlette(routes=routes, middleware=middleware)


@asynccontextmanager
async def client_for(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


async def get(app: Any, path: str = "/me", method: str = "GET", **kwargs: Any) -> httpx.Response:
    async with client_for(app) as client:
        return await client.request(method, path, **kwargs)


def assert_refused(response: httpx.Response, status: int, challenge: str, error: str) -> None:
    assert response.status_code == status
    assert response.headers.get_list("www-authenticate") == [challenge]
    assert response.headers["cache-control"] == "no-store"
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": error}


# -- accepted -----------------------------------------------------------------------------


async def test_valid_token_puts_claims_on_the_scope(verifier: Verifier, pair: TokenPair) -> None:
    response = await get(make_app(verifier), headers=bearer(pair.access_token))
    assert response.status_code == 200
    assert response.json() == {"sub": "ada", "sid": pair.sid, "scopes": ["read", "write"]}


@pytest.mark.parametrize(
    "template", ["bearer {}", "BEARER {}", "BeArEr {}", "Bearer   {}"], ids=str.split
)
async def test_scheme_is_case_insensitive_and_spaces_are_allowed(
    verifier: Verifier, pair: TokenPair, template: str
) -> None:
    headers = {"Authorization": template.format(pair.access_token)}
    response = await get(make_app(verifier), headers=headers)
    assert response.json()["sub"] == "ada"


async def test_a_reused_token_costs_one_signature_verification(
    verifier: Verifier, pair: TokenPair
) -> None:
    app = make_app(verifier)
    before = verifier.stats.signature_verifications
    async with client_for(app) as client:
        for _ in range(5):
            response = await client.get("/me", headers=bearer(pair.access_token))
            assert response.status_code == 200
    assert verifier.stats.signature_verifications - before == 1


# -- refused: RFC 6750 sec. 3 --------------------------------------------------------------


async def test_missing_header_gets_a_challenge_without_error(verifier: Verifier) -> None:
    assert_refused(await get(make_app(verifier)), 401, MISSING, "unauthorized")


async def test_another_scheme_counts_as_no_credentials(verifier: Verifier) -> None:
    response = await get(make_app(verifier), headers={"Authorization": "Basic YWRhOnB3"})
    assert_refused(response, 401, MISSING, "unauthorized")


@pytest.mark.parametrize(
    "value",
    ["Bearer", "bearer   ", "Bearer two tokens", "Bearer a,b", "Bearer tok\u00e9n"],
    ids=["no-token", "only-spaces", "space-inside", "comma", "non-ascii"],
)
async def test_malformed_header_is_invalid_request(verifier: Verifier, value: str) -> None:
    raw = [(b"authorization", value.encode("utf-8"))]
    response = await get(make_app(verifier), headers=raw)
    assert_refused(response, 400, MALFORMED, "invalid_request")


async def test_two_authorization_headers_are_invalid_request(
    verifier: Verifier, pair: TokenPair
) -> None:
    token = pair.access_token.encode()
    headers = [(b"authorization", b"Bearer " + token), (b"authorization", b"Bearer " + token)]
    response = await get(make_app(verifier), headers=headers)
    assert_refused(response, 400, MALFORMED, "invalid_request")


async def test_garbage_token_is_invalid_token(verifier: Verifier) -> None:
    response = await get(make_app(verifier), headers=bearer("abc.def.ghi"))
    assert_refused(response, 401, INVALID, "invalid_token")


async def test_expired_token(verifier: Verifier, pair: TokenPair, clock: FrozenClock) -> None:
    app = make_app(verifier)
    assert (await get(app, headers=bearer(pair.access_token))).status_code == 200
    clock.advance(901)
    assert_refused(await get(app, headers=bearer(pair.access_token)), 401, EXPIRED, "invalid_token")


async def test_wrong_audience(verifier: Verifier, store: MemoryStore, clock: FrozenClock) -> None:
    # Same store, so the same signing keys: only the audience differs.
    other = await TokenService.create(
        store, TokenPolicy(issuer=ISSUER, audience="another-api"), clock=clock
    )
    token = (await other.issue("ada", scope="read")).access_token
    assert_refused(
        await get(make_app(verifier), headers=bearer(token)), 401, INVALID, "invalid_token"
    )


async def test_revoked_session(verifier: Verifier, service: TokenService, pair: TokenPair) -> None:
    app = make_app(verifier)
    assert (await get(app, headers=bearer(pair.access_token))).status_code == 200
    await service.revoke_session(pair.sid)
    assert_refused(await get(app, headers=bearer(pair.access_token)), 401, REVOKED, "invalid_token")


async def test_refresh_token_is_not_an_access_token(verifier: Verifier, pair: TokenPair) -> None:
    response = await get(make_app(verifier), headers=bearer(pair.refresh_token))
    assert_refused(response, 401, INVALID, "invalid_token")


async def test_insufficient_scope_is_403_with_the_scope(
    verifier: Verifier, pair: TokenPair
) -> None:
    app = make_app(verifier, scopes=["read", "admin"])
    response = await get(app, headers=bearer(pair.access_token))
    assert_refused(response, 403, insufficient("admin read"), "insufficient_scope")


async def test_scopes_held_are_accepted(verifier: Verifier, pair: TokenPair) -> None:
    response = await get(make_app(verifier, scopes="read write"), headers=bearer(pair.access_token))
    assert response.status_code == 200


async def test_refusals_log_the_reason_but_never_the_token(
    verifier: Verifier, pair: TokenPair, clock: FrozenClock, caplog: pytest.LogCaptureFixture
) -> None:
    clock.advance(901)
    with caplog.at_level(logging.DEBUG):
        response = await get(make_app(verifier), headers=bearer(pair.access_token))
    assert response.status_code == 401
    assert "token_expired" in caplog.text
    assert pair.access_token not in caplog.text
    assert pair.access_token.split(".")[1] not in caplog.text


# -- optional paths ------------------------------------------------------------------------


async def test_optional_path_without_credentials_passes_anonymous(verifier: Verifier) -> None:
    app = make_app(verifier, optional_paths=["/public", "/open/*"])
    assert (await get(app, "/public")).json() == {"sub": None}
    assert (await get(app, "/open/a/b")).json() == {"sub": None}
    assert (await get(app, "/me")).status_code == 401


async def test_optional_path_still_refuses_a_bad_token(verifier: Verifier) -> None:
    app = make_app(verifier, optional_paths=["/public"])
    response = await get(app, "/public", headers=bearer("abc.def.ghi"))
    assert_refused(response, 401, INVALID, "invalid_token")


async def test_optional_path_does_not_require_scopes(verifier: Verifier, pair: TokenPair) -> None:
    app = make_app(verifier, scopes=["admin"], optional_paths=["/public"])
    assert (await get(app, "/public", headers=bearer(pair.access_token))).json()["sub"] == "ada"
    assert (await get(app, "/me", headers=bearer(pair.access_token))).status_code == 403


# -- key sources ---------------------------------------------------------------------------


async def test_unknown_kid_falls_back_to_verify_async(
    store: MemoryStore, policy: TokenPolicy, clock: FrozenClock
) -> None:
    # A resource server over its own key ring; the auth server (another instance on the
    # same store) rotates, and its first token has a kid the resource server never saw.
    auth = await TokenService.create(store, policy, clock=clock)
    resource = await TokenService.create(store, policy, clock=clock)
    source = KeyRingKeys(resource.keyring, clock=clock)
    verifier = Verifier(source, issuer=ISSUER, audience=AUDIENCE, clock=clock)
    await auth.keyring.rotate()
    token = (await auth.issue("ada", scope="read")).access_token
    response = await get(make_app(verifier), headers=bearer(token))
    assert response.json()["sub"] == "ada"
    assert source.reloads == 1
    assert verifier.stats.key_refreshes == 1


async def test_remote_jwks_is_fetched_on_first_use(
    service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    fetched: list[int] = []

    async def jwks(request: Request) -> Response:
        fetched.append(1)
        return JSONResponse(service.keyring.jwks(), headers={"Cache-Control": "max-age=300"})

    jwks_app = Starlette(routes=[Route("/jwks", jwks)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=jwks_app)) as http:
        source = RemoteJWKS("http://127.0.0.1/jwks", client=http, clock=clock)
        verifier = Verifier(source, issuer=ISSUER, audience=AUDIENCE, clock=clock)
        app = make_app(verifier)
        async with client_for(app) as client:
            for _ in range(3):
                response = await client.get("/me", headers=bearer(pair.access_token))
                assert response.json()["sub"] == "ada"
    assert len(fetched) == 1
    assert verifier.stats.signature_verifications == 1


# -- sliding on action ---------------------------------------------------------------------


def sliding_app(verifier: Verifier, service: TokenService, **options: Any) -> Starlette:
    return make_app(verifier, sliding=SlidingConfig(service, paths=["/slide/*"], **options))


async def test_no_fresh_token_in_the_first_half(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    clock.advance(449)
    response = await get(
        sliding_app(verifier, service), "/slide/me", headers=bearer(pair.access_token)
    )
    assert response.status_code == 200
    assert "x-refreshed-token" not in response.headers


async def test_fresh_token_past_half_life(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    app = sliding_app(verifier, service)
    clock.advance(450)
    response = await get(app, "/slide/me", headers=bearer(pair.access_token))
    assert response.status_code == 200
    fresh = response.headers["x-refreshed-token"]
    old, new = verifier.verify(pair.access_token), verifier.verify(fresh)
    assert (new.sub, new.sid, new.scopes) == (old.sub, old.sid, old.scopes)
    assert new.iat == old.iat + 450
    assert new.exp == old.exp + 450
    assert response.headers["cache-control"] == "no-store"
    # A route that is not marked as sliding never gets one.
    assert (
        "x-refreshed-token"
        not in (await get(app, "/me", headers=bearer(pair.access_token))).headers
    )


async def test_fresh_token_response_is_never_cacheable(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    clock.advance(600)
    app = sliding_app(verifier, service)
    response = await get(app, "/slide/cacheable", headers=bearer(pair.access_token))
    assert "x-refreshed-token" in response.headers
    assert response.headers.get_list("cache-control") == ["no-store"]
    # Without a fresh token the app's own Cache-Control is left alone.
    pair2 = await service.issue("bob", scope="read")
    response = await get(app, "/slide/cacheable", headers=bearer(pair2.access_token))
    assert response.headers["cache-control"] == "public, max-age=60"


async def test_sliding_never_passes_the_absolute_expiry(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    # The session ends 1500 s after login (conftest policy); tokens last 900 s.
    app = sliding_app(verifier, service)
    session_exp = verifier.verify(pair.access_token).claims["session_exp"]
    clock.advance(800)
    fresh = (await get(app, "/slide/me", headers=bearer(pair.access_token))).headers[
        "x-refreshed-token"
    ]
    claims = verifier.verify(fresh)
    assert claims.exp == session_exp  # Capped: 800 + 900 would pass the session's end.
    clock.advance(450)  # Past the fresh token's half life: nothing left to extend.
    response = await get(app, "/slide/me", headers=bearer(fresh))
    assert response.status_code == 200
    assert "x-refreshed-token" not in response.headers


async def test_sliding_predicate_and_custom_header(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    config = SlidingConfig(
        service, predicate=lambda scope: scope["method"] == "GET", header="X-Access-Token"
    )
    clock.advance(500)
    response = await get(make_app(verifier, sliding=config), headers=bearer(pair.access_token))
    assert verifier.verify(response.headers["x-access-token"]).sid == pair.sid


async def test_sliding_cookie_mode(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    app = sliding_app(verifier, service, cookie="tw_access")
    clock.advance(500)
    async with client_for(app) as client:
        client.cookies.set("tw_access", pair.access_token)
        response = await client.get("/slide/me")  # The token comes from the cookie.
        assert response.json()["sub"] == "ada"
        set_cookie = response.headers["set-cookie"]
        name_value, *attributes = set_cookie.split("; ")
        assert attributes == ["Max-Age=900", "Path=/", "HttpOnly", "SameSite=Strict", "Secure"]
        fresh = name_value.removeprefix("tw_access=")
        assert verifier.verify(fresh).sid == pair.sid
        assert "x-refreshed-token" not in response.headers
        # The Authorization header wins over the cookie.
        response = await client.get("/me", headers=bearer("abc.def.ghi"))
        assert response.status_code == 401


async def test_sliding_configuration_is_checked(service: TokenService) -> None:
    with pytest.raises(ConfigurationError, match="name the sliding routes"):
        SlidingConfig(service)
    with pytest.raises(ConfigurationError, match="header"):
        SlidingConfig(service, paths=["/x"], header="X Token")
    with pytest.raises(ConfigurationError, match="path pattern"):
        SlidingConfig(service, paths=["x"])
    with pytest.raises(ConfigurationError, match="cookie"):
        SlidingConfig(service, paths=["/x"], cookie="a;b")


# -- websocket -----------------------------------------------------------------------------


def test_websocket_accepted_and_refused_with_the_http_answer(
    verifier: Verifier, pair: TokenPair
) -> None:
    # The test client offers the websocket.http.response extension (as uvicorn does):
    # a refused handshake gets the same HTTP answer as a refused request.
    with TestClient(make_app(verifier)) as client:
        with client.websocket_connect("/ws", headers=bearer(pair.access_token)) as ws:
            assert ws.receive_json() == {"sub": "ada"}
        invalid_token = bearer("abc.def.ghi")
        with (
            pytest.raises(WebSocketDenialResponse) as invalid,
            client.websocket_connect("/ws", headers=invalid_token),
        ):
            pass
        with pytest.raises(WebSocketDenialResponse) as missing, client.websocket_connect("/ws"):
            pass
    assert invalid.value.status_code == 401
    assert invalid.value.headers["www-authenticate"] == INVALID
    assert invalid.value.json() == {"error": "invalid_token"}
    assert missing.value.status_code == 401
    assert missing.value.headers["www-authenticate"] == MISSING


async def test_websocket_without_the_denial_extension_closes_1008(verifier: Verifier) -> None:
    app = make_app(verifier)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: Any) -> None:
        sent.append(dict(message))

    scope = {
        "type": "websocket", "asgi": {"version": "3.0"}, "scheme": "ws", "path": "/ws",
        "raw_path": b"/ws", "query_string": b"", "root_path": "", "headers": [],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "subprotocols": [],
    }  # fmt: skip
    await app(scope, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": "unauthorized"}]


# -- lifespan and other scopes -------------------------------------------------------------


def test_lifespan_passes_through(verifier: Verifier) -> None:
    events: list[str] = []

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        events.append("startup")
        yield
        events.append("shutdown")

    app = Starlette(
        routes=[Route("/me", me)],
        middleware=[Middleware(TokenwardMiddleware, verifier=verifier)],
        lifespan=lifespan,
    )
    with TestClient(app) as client:
        assert client.get("/me").status_code == 401
    assert events == ["startup", "shutdown"]


def test_middleware_configuration_is_checked(verifier: Verifier) -> None:
    app: Callable[..., Any] = make_app(verifier)
    with pytest.raises(ConfigurationError, match="Verifier"):
        TokenwardMiddleware(app, object())  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="realm"):
        TokenwardMiddleware(app, verifier, realm='a"b')
    with pytest.raises(ConfigurationError, match="path pattern"):
        TokenwardMiddleware(app, verifier, optional_paths=["public"])


async def test_error_body_is_generic_json(
    verifier: Verifier, pair: TokenPair, clock: FrozenClock
) -> None:
    clock.advance(2000)
    response = await get(make_app(verifier), headers=bearer(pair.access_token))
    assert json.loads(response.content) == {"error": "invalid_token"}
    assert int(response.headers["content-length"]) == len(response.content)


# -- CORS preflights -----------------------------------------------------------------------

PREFLIGHT = {"Origin": "https://app.example", "Access-Control-Request-Method": "GET"}


def cors_app(verifier: Verifier, *, cors_outermost: bool) -> Starlette:
    cors = Middleware(
        CORSMiddleware, allow_origins=["https://app.example"], allow_headers=["Authorization"]
    )
    tokenward = Middleware(TokenwardMiddleware, verifier=verifier)
    # Starlette: the first listed is the outermost.
    middleware = [cors, tokenward] if cors_outermost else [tokenward, cors]
    return Starlette(routes=[Route("/me", me)], middleware=middleware)


@pytest.mark.parametrize("cors_outermost", [True, False], ids=["cors-outside", "cors-inside"])
async def test_a_cors_preflight_is_never_refused_for_lack_of_a_token(
    verifier: Verifier, cors_outermost: bool
) -> None:
    app = cors_app(verifier, cors_outermost=cors_outermost)
    response = await get(app, headers=PREFLIGHT, method="OPTIONS")
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_an_options_request_that_is_not_a_preflight_needs_a_token(
    verifier: Verifier,
) -> None:
    app = cors_app(verifier, cors_outermost=False)
    response = await get(app, headers={"Origin": "https://app.example"}, method="OPTIONS")
    assert_refused(response, 401, MISSING, "unauthorized")
    # A preflight that does carry credentials is an ordinary request: they are verified.
    response = await get(app, headers={**PREFLIGHT, **bearer("a.b.c")}, method="OPTIONS")
    assert_refused(response, 401, INVALID, "invalid_token")


async def test_refusals_carry_cors_headers_when_cors_is_outermost(verifier: Verifier) -> None:
    app = cors_app(verifier, cors_outermost=True)
    response = await get(app, headers={"Origin": "https://app.example"})
    assert_refused(response, 401, MISSING, "unauthorized")
    assert response.headers["access-control-allow-origin"] == "https://app.example"


# -- cookie mode: what the cookie carries ----------------------------------------------------


@pytest.mark.parametrize("value", ["not a token", "a,b", "abc.def.ghi"])
async def test_a_bad_cookie_is_an_invalid_token_not_a_malformed_header(
    verifier: Verifier, service: TokenService, value: str
) -> None:
    app = sliding_app(verifier, service, cookie="tw_access")
    async with client_for(app) as client:
        client.cookies.set("tw_access", value)
        response = await client.get("/slide/me")
    assert_refused(response, 401, INVALID, "invalid_token")
    assert "Authorization" not in response.headers["www-authenticate"]


# -- sliding only on success -----------------------------------------------------------------


async def fails(request: Request) -> Response:
    return JSONResponse({"error": "nope"}, status_code=422)


async def test_no_fresh_token_on_an_error_response(
    verifier: Verifier, service: TokenService, pair: TokenPair, clock: FrozenClock
) -> None:
    config = SlidingConfig(service, paths=["/*"])
    app = Starlette(
        routes=[Route("/me", me), Route("/fails", fails)],
        middleware=[Middleware(TokenwardMiddleware, verifier=verifier, sliding=config)],
    )
    clock.advance(600)
    async with client_for(app) as client:
        missing = await client.get("/no-such-route", headers=bearer(pair.access_token))
        refused = await client.get("/fails", headers=bearer(pair.access_token))
        served = await client.get("/me", headers=bearer(pair.access_token))
    assert (missing.status_code, refused.status_code, served.status_code) == (404, 422, 200)
    assert "x-refreshed-token" not in missing.headers
    assert "x-refreshed-token" not in refused.headers
    assert verifier.verify(served.headers["x-refreshed-token"]).sid == pair.sid


# -- configuration errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    "realm", [123, None, "caf\u00e9", "caf\u20ac", "tab\there", 'a"b'], ids=repr
)
def test_a_realm_that_cannot_be_sent_is_a_configuration_error(
    verifier: Verifier, realm: Any
) -> None:
    # Past ASCII a header value is obs-text that clients decode differently (Starlette's
    # test client fails on Latin-1), past Latin-1 it cannot be sent at all.
    with pytest.raises(ConfigurationError, match="realm"):
        TokenwardMiddleware(make_app(verifier), verifier, realm=realm)
