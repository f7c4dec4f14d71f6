"""AsyncTokenwardAuth against the real auth server app (in-process ASGI transport).

The protected resource is the server's own ``GET /userinfo`` (a bearer endpoint that
answers 401 ``invalid_token`` for expired and revoked tokens, RFC 6750). Token requests
are counted at the transport; logins and refreshes also at the server's metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.client.conftest import ACCESS_LIFETIME, TOKEN_URL, Server, add_users, make_server
from tests.client.support import TOKEN_PATH, Barrier, CallerClock, Gate
from tests.server.conftest import CLIENT_SECRET, ISSUER, PASSWORD, make_settings, state_of
from tokenward.client import (
    AsyncTokenwardAuth,
    LoginFailedError,
    LoginRequiredError,
    MemoryTokenStorage,
    StoredToken,
    TokenEndpointError,
    TokenwardAuth,
)
from tokenward.errors import ConfigurationError, InvalidTokenError
from tokenward.service import KeyRingKeys, Verifier
from tokenward.testing import FrozenClock


def standing_clock(server: Server) -> CallerClock:
    """A client clock at the server's current time that nobody advances."""
    return CallerClock(FrozenClock(server.clock.now()))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def bearer_of(response: httpx.Response) -> str:
    header = response.request.headers["Authorization"]
    assert header.startswith("Bearer ")
    return header.removeprefix("Bearer ")


async def test_first_request_logs_in_and_attaches_the_access_token(server: Server) -> None:
    storage = MemoryTokenStorage()
    async with server.client(server.auth(storage=storage)) as http:
        response = await http.get("/userinfo")
    assert response.status_code == 200
    assert response.json()["username"] == "ada"
    assert server.transport.paths == {"/oauth/token": 1, "/userinfo": 1}
    assert server.metrics.logins.get("success") == 1
    stored = storage.load()
    assert stored is not None
    assert bearer_of(response) == stored.access_token
    assert stored.refresh_token is not None
    assert stored.scope == "read write"
    assert stored.expires_at == server.clock.now() + ACCESS_LIFETIME


async def test_the_token_is_reused_until_the_refresh_margin(server: Server) -> None:
    async with server.client(server.auth()) as http:
        first = await http.get("/userinfo")
        for _ in range(5):
            assert bearer_of(await http.get("/userinfo")) == bearer_of(first)
        server.clock.advance(ACCESS_LIFETIME - 30 - 1)  # one second before the margin
        assert bearer_of(await http.get("/userinfo")) == bearer_of(first)
        assert server.transport.token_requests == 1
        server.clock.advance(1)  # 30 s before expiry: renew now
        renewed = await http.get("/userinfo")
        assert renewed.status_code == 200
        assert bearer_of(renewed) != bearer_of(first)
        for _ in range(5):
            assert bearer_of(await http.get("/userinfo")) == bearer_of(renewed)
    assert server.transport.token_requests == 2
    assert server.metrics.refreshes.get("success") == 1
    assert server.metrics.logins.get("success") == 1


async def test_a_request_past_expiry_triggers_exactly_one_refresh(server: Server) -> None:
    storage = MemoryTokenStorage()
    async with server.client(server.auth(storage=storage)) as http:
        await http.get("/userinfo")
        before = storage.load()
        server.clock.advance(ACCESS_LIFETIME + 60)
        response = await http.get("/userinfo")
        await http.get("/userinfo")
    assert response.status_code == 200
    assert server.transport.token_requests == 2
    assert server.metrics.refreshes.get("success") == 1
    # The rotated refresh token was stored.
    after = storage.load()
    assert before is not None
    assert after is not None
    assert after.refresh_token != before.refresh_token
    assert bearer_of(response) == after.access_token


async def test_the_margin_is_configurable(server: Server) -> None:
    async with server.client(server.auth(refresh_margin=120)) as http:
        await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME - 121)
        await http.get("/userinfo")
        assert server.transport.token_requests == 1
        server.clock.advance(1)
        await http.get("/userinfo")
    assert server.transport.token_requests == 2


@pytest.mark.parametrize("settings", [make_settings(access_lifetime=40.0)], ids=["40s-tokens"])
async def test_short_tokens_are_renewed_at_half_their_life(server: Server) -> None:
    # A 30 s margin on a 40 s token would renew on every request; half the life it is.
    async with server.client(server.auth()) as http:
        await http.get("/userinfo")
        server.clock.advance(19)
        await http.get("/userinfo")
        assert server.transport.token_requests == 1
        server.clock.advance(1)
        await http.get("/userinfo")
        await http.get("/userinfo")
    assert server.transport.token_requests == 2


async def test_fifty_concurrent_requests_with_an_expiring_token_refresh_once(
    server: Server,
) -> None:
    async with server.client(server.auth()) as http:
        old = bearer_of(await http.get("/userinfo"))
        server.clock.advance(ACCESS_LIFETIME - 10)
        # Hold the refresh until all 50 requests are in the auth flow.
        server.transport.holds[TOKEN_PATH] = Gate(server.client_clock, 50)
        responses = await asyncio.gather(*(http.get("/userinfo") for _ in range(50)))
    assert [r.status_code for r in responses] == [200] * 50
    tokens = {bearer_of(r) for r in responses}
    assert len(tokens) == 1
    assert old not in tokens
    assert server.transport.token_requests == 2  # the login, then one refresh
    assert server.metrics.refreshes.get("success") == 1


async def test_fifty_concurrent_first_requests_log_in_once(server: Server) -> None:
    async with server.client(server.auth()) as http:
        server.transport.holds[TOKEN_PATH] = Gate(server.client_clock, 50)
        responses = await asyncio.gather(*(http.get("/userinfo") for _ in range(50)))
    assert {r.status_code for r in responses} == {200}
    assert server.transport.token_requests == 1
    assert server.metrics.logins.get("success") == 1


async def test_a_401_invalid_token_refreshes_and_retries_once(server: Server) -> None:
    # The client's clock stands still while the server's runs on (a laptop that slept:
    # the monotonic clock does not count suspend). The server refuses the expired token.
    frozen_client = server.auth(clock=standing_clock(server))
    async with server.client(frozen_client) as http:
        first = await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME + 1)
        response = await http.get("/userinfo")
    assert response.status_code == 200
    assert bearer_of(response) != bearer_of(first)
    assert server.transport.paths == {"/oauth/token": 2, "/userinfo": 3}
    assert server.metrics.refreshes.get("success") == 1
    assert server.metrics.verification_failures.get("token_expired") == 1
    # The refused attempt is in the history, like any auth flow's intermediate answer.
    assert [r.status_code for r in response.history] == [401, 200]


async def test_concurrent_401s_refresh_once(server: Server) -> None:
    clock = standing_clock(server)
    async with server.client(server.auth(clock=clock)) as http:
        await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME + 1)
        # All 20 are refused together; the refresh is held until all 20 want one.
        server.transport.holds["/userinfo"] = Barrier(20, on_open=clock.forget_callers)
        server.transport.holds[TOKEN_PATH] = Gate(clock, 20)
        responses = await asyncio.gather(*(http.get("/userinfo") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert server.metrics.refreshes.get("success") == 1
    assert server.transport.token_requests == 2


async def test_a_streamed_body_is_not_sent_twice(server: Server) -> None:
    auth = server.auth(clock=standing_clock(server))

    async def body() -> AsyncIterator[bytes]:
        yield b"{}"

    async with server.client(auth) as http:
        await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME + 1)
        response = await http.post("/logout", content=body())
        # Refused and not retried (the body is gone); the 401 is the answer.
        assert response.status_code == 401
        assert server.transport.paths["/logout"] == 1
        assert server.metrics.refreshes.get("success") == 0
        # The next request renews the refused token before it is sent.
        assert (await http.get("/userinfo")).history[-1].request.url.path == TOKEN_PATH
    assert server.metrics.refreshes.get("success") == 1
    assert server.transport.paths["/userinfo"] == 2


async def test_403_insufficient_scope_is_not_retried(server: Server) -> None:
    async with server.client(server.auth()) as http:
        response = await http.get("/admin/users")
    assert response.status_code == 403
    assert server.transport.paths == {"/oauth/token": 1, "/admin/users": 1}


def refusing_resource(server: Server) -> Starlette:
    """A resource server with the real Verifier, expecting another audience: it refuses
    every token with 401 invalid_token, however fresh."""
    verifier = Verifier(
        KeyRingKeys(state_of(server.app).tokens.keyring), issuer=ISSUER, audience="other-api"
    )

    async def endpoint(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ")
        try:
            verifier.verify(token)
        except InvalidTokenError:
            challenge = 'Bearer realm="api", error="invalid_token"'
            return Response(status_code=401, headers={"WWW-Authenticate": challenge})
        return JSONResponse({"ok": True})  # pragma: no cover - the audience never matches

    return Starlette(routes=[Route("/things", endpoint)])


async def test_a_token_refused_again_after_renewal_is_the_answer(server: Server) -> None:
    api = httpx.ASGITransport(app=refusing_resource(server))
    mounts = {"https://api.test": api, ISSUER: server.transport}
    async with httpx.AsyncClient(mounts=mounts, auth=server.auth()) as http:
        response = await http.get("https://api.test/things")
    assert response.status_code == 401
    # The login answer, the first refusal, the refresh answer; then the last refusal.
    assert [r.status_code for r in response.history] == [200, 401, 200]
    assert server.transport.token_requests == 2  # login, one refresh, no loop
    assert server.metrics.refreshes.get("success") == 1


async def test_reuse_detected_clears_storage_and_logs_in_again(server: Server) -> None:
    storage = MemoryTokenStorage()
    async with server.client(server.auth(storage=storage)) as http:
        await http.get("/userinfo")
        stolen = storage.load()
        assert stolen is not None
        assert stolen.refresh_token is not None
        # A thief refreshes first; the client's refresh token is now a superseded one.
        assert (await server.raw_refresh(stolen.refresh_token)).status_code == 200
        server.clock.advance(ACCESS_LIFETIME)  # past the reuse grace and the expiry
        response = await http.get("/userinfo")
    assert response.status_code == 200
    assert server.metrics.reuse_detected.get() == 1
    assert server.metrics.logins.get("success") == 2  # the first login, and again
    fresh = storage.load()
    assert fresh is not None
    assert fresh.refresh_token != stolen.refresh_token
    assert bearer_of(response) == fresh.access_token


async def test_reuse_detected_without_credentials_raises_login_required(
    server: Server,
) -> None:
    seed = (await server.raw_login())["refresh_token"]
    storage = MemoryTokenStorage()
    async with server.client(server.auth(username=None, password=None, refresh_token=seed,
                                         storage=storage)) as http:  # fmt: skip
        await http.get("/userinfo")
        current = storage.load()
        assert current is not None
        assert current.refresh_token is not None
        assert (await server.raw_refresh(current.refresh_token)).status_code == 200
        server.clock.advance(ACCESS_LIFETIME)
        with pytest.raises(LoginRequiredError) as caught:
            await http.get("/userinfo")
        assert caught.value.code == "login_required"
        assert storage.load() is None
        # And it stays that way: nothing to log in with.
        with pytest.raises(LoginRequiredError):
            await http.get("/userinfo")


async def test_a_revoked_session_means_a_new_login(server: Server) -> None:
    async with server.client(server.auth()) as http:
        first = await http.get("/userinfo")
        assert (await http.post("/logout")).status_code == 204
        response = await http.get("/userinfo")
    # 401 invalid_token (revoked) -> refresh refused (invalid_grant) -> login -> retry.
    assert response.status_code == 200
    assert bearer_of(response) != bearer_of(first)
    assert server.metrics.verification_failures.get("token_revoked") == 1
    assert server.metrics.logins.get("success") == 2


async def test_a_revoked_session_without_credentials_raises_login_required(
    server: Server,
) -> None:
    seed = (await server.raw_login())["refresh_token"]
    async with server.client(server.auth(username=None, password=None, refresh_token=seed)) as http:
        assert (await http.get("/userinfo")).status_code == 200
        assert (await http.post("/logout")).status_code == 204
        with pytest.raises(LoginRequiredError, match="log in again"):
            await http.get("/userinfo")


async def test_an_initial_refresh_token_is_exchanged_not_a_password(server: Server) -> None:
    seed = (await server.raw_login())["refresh_token"]
    storage = MemoryTokenStorage()
    auth = server.auth(username=None, password=None, refresh_token=seed, storage=storage)
    async with server.client(auth) as http:
        assert (await http.get("/userinfo")).status_code == 200
    assert server.metrics.logins.get("success") == 1  # the raw login only
    assert server.metrics.refreshes.get("success") == 1
    stored = storage.load()
    assert stored is not None
    assert stored.refresh_token not in (None, seed)


async def test_no_credentials_and_no_token_raises_login_required(server: Server) -> None:
    async with server.client(server.auth(username=None, password=None)) as http:
        with pytest.raises(LoginRequiredError):
            await http.get("/userinfo")
    assert server.transport.paths == {}


async def test_a_wrong_password_raises_login_failed(server: Server) -> None:
    async with server.client(server.auth(password="not the password")) as http:
        with pytest.raises(LoginFailedError) as caught:
            await http.get("/userinfo")
    assert caught.value.code == "login_failed"
    assert (caught.value.status, caught.value.error) == (400, "invalid_grant")
    assert server.transport.paths == {"/oauth/token": 1}


@pytest.mark.parametrize(
    "settings", [make_settings(throttle_per_account=2)], ids=["two-failures-allowed"]
)
async def test_a_throttled_login_raises_login_failed_with_retry_after(server: Server) -> None:
    async with server.client(server.auth(password="not the password")) as http:
        for _ in range(2):
            with pytest.raises(LoginFailedError):
                await http.get("/userinfo")
        with pytest.raises(LoginFailedError) as caught:
            await http.get("/userinfo")
    assert caught.value.status == 429
    assert caught.value.retry_after is not None
    assert caught.value.retry_after > 0


async def test_a_confidential_client_authenticates_with_basic(server: Server) -> None:
    async with server.client(server.auth(client_id="svc", client_secret=CLIENT_SECRET)) as http:
        response = await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME)
        assert (await http.get("/userinfo")).status_code == 200
    assert response.status_code == 200
    assert server.metrics.refreshes.get("success") == 1
    async with server.client(server.auth(client_id="svc", client_secret="wrong")) as http:
        with pytest.raises(TokenEndpointError) as caught:
            await http.get("/userinfo")
    assert (caught.value.status, caught.value.error) == (401, "invalid_client")
    assert caught.value.code == "token_endpoint_error"


async def test_scopes_are_requested_at_login(server: Server) -> None:
    storage = MemoryTokenStorage()
    async with server.client(server.auth(scope=["read"], storage=storage)) as http:
        response = await http.get("/userinfo")
    assert response.json()["scopes"] == ["read"]
    stored = storage.load()
    assert stored is not None
    assert stored.scope == "read"


async def test_an_endpoint_outage_keeps_the_valid_token_in_use(server: Server) -> None:
    async with server.client(server.auth()) as http:
        first = await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME - 20)  # inside the margin, not expired
        server.store.cut = True
        during = [await http.get("/userinfo") for _ in range(5)]
        # One attempt, answered 503; then a pause of Retry-After (5 s) before the next.
        assert server.transport.token_requests == 2
        assert {bearer_of(r) for r in during} == {bearer_of(first)}
        server.clock.advance(5)
        await http.get("/userinfo")
        assert server.transport.token_requests == 3
        server.store.cut = False
        server.clock.advance(5)
        renewed = await http.get("/userinfo")
    assert bearer_of(renewed) != bearer_of(first)
    assert server.metrics.refreshes.get("success") == 1


class RetryAfter(httpx.AsyncBaseTransport):
    """The server's transport, with ``value`` as the Retry-After of token endpoint answers
    (as another server might send it)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, value: bytes) -> None:
        self._inner = inner
        self._value = value

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self._inner.handle_async_request(request)
        if request.url.path != TOKEN_PATH or "retry-after" not in response.headers:
            return response
        headers = [(k, v) for k, v in response.headers.raw if k.lower() != b"retry-after"]
        body = await response.aread()
        return httpx.Response(
            response.status_code, headers=[*headers, (b"Retry-After", self._value)], content=body
        )


@pytest.mark.parametrize(
    ("value", "pause"),
    [(b"7", 7), (b"\xb2", 5), (b"Wed, 21 Oct 2015 07:28:00 GMT", 5)],
    ids=["seconds", "latin1-superscript-two", "http-date"],
)
async def test_an_outage_pauses_renewal_for_retry_after_or_else_5_seconds(
    server: Server, value: bytes, pause: int
) -> None:
    transport = RetryAfter(server.transport, value)
    async with httpx.AsyncClient(transport=transport, base_url=ISSUER, auth=server.auth()) as http:
        first = await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME - 29)  # inside the margin, 29 s left
        server.store.cut = True
        during = await http.get("/userinfo")
        assert during.status_code == 200
        assert bearer_of(during) == bearer_of(first)
        assert [r.status_code for r in during.history] == [503]
        server.clock.advance(pause - 1)
        await http.get("/userinfo")
        assert server.transport.token_requests == 2
        server.clock.advance(1)
        await http.get("/userinfo")
        assert server.transport.token_requests == 3


async def test_an_outage_during_a_login_keeps_the_valid_token_in_use(server: Server) -> None:
    # A token with no refresh token (as some servers issue): renewal is a new login.
    answer = await server.raw_login()
    token = StoredToken(answer["access_token"], None, server.clock.now(), server.clock.now() + 900)
    async with server.client(server.auth(storage=MemoryTokenStorage(token))) as http:
        server.clock.advance(ACCESS_LIFETIME - 20)
        server.store.cut = True
        response = await http.get("/userinfo")
        assert response.status_code == 200
        assert bearer_of(response) == answer["access_token"]
        assert [r.status_code for r in response.history] == [503]
        server.store.cut = False
        server.clock.advance(5)
        renewed = await http.get("/userinfo")
    assert [r.status_code for r in renewed.history] == [200]
    assert server.metrics.logins.get("success") == 2


async def test_an_endpoint_outage_after_expiry_is_an_error(server: Server) -> None:
    async with server.client(server.auth()) as http:
        await http.get("/userinfo")
        server.clock.advance(ACCESS_LIFETIME + 1)
        server.store.cut = True
        with pytest.raises(TokenEndpointError) as caught:
            await http.get("/userinfo")
        assert (caught.value.status, caught.value.error) == (503, "temporarily_unavailable")
        server.store.cut = False
        assert (await http.get("/userinfo")).status_code == 200


async def test_logout_revokes_the_session_and_forgets_the_tokens(server: Server) -> None:
    storage = MemoryTokenStorage()
    auth = server.auth(storage=storage)
    async with server.client(auth) as http:
        await http.get("/userinfo")
        held = storage.load()
        assert held is not None
        assert held.refresh_token is not None
        await auth.logout(http)
        assert storage.load() is None
        assert (await server.raw_refresh(held.refresh_token)).status_code == 400
        refused = await http.get("/userinfo", auth=None, headers=bearer(held.access_token))
        assert refused.status_code == 401
        # The next request logs in again.
        assert (await http.get("/userinfo")).status_code == 200
        await auth.logout(http)
        await auth.logout(http)  # nothing to revoke: nothing sent
    assert server.transport.paths["/oauth/revoke"] == 2
    assert server.metrics.logins.get("success") == 2


async def test_one_auth_object_serves_two_event_loops(server: Server) -> None:
    # An asyncio.Lock binds to the loop it first waits in. The auth waits in this
    # test's loop (50 concurrent first requests), then serves another loop (another
    # asyncio.run, with its own server), where it must wait again without a RuntimeError.
    auth = server.auth()
    async with server.client(auth) as http:
        server.transport.holds[TOKEN_PATH] = Gate(server.client_clock, 50)
        await asyncio.gather(*(http.get("/userinfo") for _ in range(50)))

    async def elsewhere() -> set[int]:
        other = make_server(make_settings())
        async with other.app.router.lifespan_context(other.app):
            await add_users(other)
            async with other.client(auth) as http:
                # The other server refuses the first server's token (401), the refresh
                # is refused too, and the auth logs in there; once, for all 20.
                responses = await asyncio.gather(*(http.get("/userinfo") for _ in range(20)))
                assert other.metrics.logins.get("success") == 1
        return {r.status_code for r in responses}

    assert await asyncio.to_thread(asyncio.run, elsewhere()) == {200}


async def test_the_flavours_refuse_the_wrong_client(server: Server) -> None:
    with (
        httpx.Client(base_url=ISSUER, auth=server.auth()) as sync_http,
        pytest.raises(ConfigurationError, match="AsyncTokenwardAuth is for"),
    ):
        sync_http.get("/userinfo")
    sync_auth = TokenwardAuth(TOKEN_URL, client_id="web", username="ada", password=PASSWORD)
    async with server.client(sync_auth) as http:
        with pytest.raises(ConfigurationError, match="TokenwardAuth is for"):
            await http.get("/userinfo")
    assert server.transport.paths == {}


@pytest.mark.parametrize(
    ("url", "options", "message"),
    [
        ("http://auth.example/oauth/token", {}, "must use https"),
        ("ftp://auth.example/oauth/token", {}, "absolute http"),
        ("/oauth/token", {}, "absolute http"),
        (TOKEN_URL, {"client_id": ""}, "client_id"),
        (TOKEN_URL, {"password": None}, "give both or neither"),
        (TOKEN_URL, {"username": None}, "give both or neither"),
        (TOKEN_URL, {"refresh_token": ""}, "refresh_token"),
        (TOKEN_URL, {"refresh_margin": -1}, "refresh_margin"),
        (TOKEN_URL, {"refresh_margin": float("nan")}, "refresh_margin"),
        (TOKEN_URL, {"revocation_url": "http://auth.example/revoke"}, "revocation_url"),
    ],
    ids=["plain-http", "ftp", "relative", "no-client-id", "no-password", "no-username",
         "empty-refresh-token", "negative-margin", "nan-margin", "plain-http-revocation"],
)  # fmt: skip
def test_configuration_errors(url: str, options: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"client_id": "web", "username": "ada", "password": "pw"}
    arguments.update(options)
    with pytest.raises(ConfigurationError, match=message):
        AsyncTokenwardAuth(url, **arguments)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000/oauth/token", "http://localhost/oauth/token", "http://[::1]/t"],
    ids=["ipv4-loopback", "localhost", "ipv6-loopback"],
)
def test_plain_http_is_allowed_on_loopback(url: str) -> None:
    TokenwardAuth(url, client_id="web")


def test_plain_http_elsewhere_needs_allow_http() -> None:
    TokenwardAuth("http://auth.internal/oauth/token", client_id="web", allow_http=True)


def test_repr_names_the_endpoint_and_client_only() -> None:
    auth = AsyncTokenwardAuth(TOKEN_URL, client_id="svc", client_secret="top-secret",
                              username="ada", password="hunter2hunter2")  # fmt: skip
    assert repr(auth) == f"AsyncTokenwardAuth(token_url={TOKEN_URL!r}, client_id='svc')"
