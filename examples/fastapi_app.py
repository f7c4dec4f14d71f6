"""A FastAPI resource server that accepts tokenward access tokens.

Run it (from the repository root)::

    python examples/fastapi_app.py

With no configuration it runs a self-contained demo: a TokenService on an in-memory
store in this process, a demo user whose password is printed at start-up together with
a ready access token and a curl command, and a ``/demo/token`` password endpoint so the
interactive docs (``/docs``, *Authorize*) can log in (same origin, which a browser
requires: the auth server sends no CORS headers). Against a real auth server::

    TOKENWARD_JWKS=https://auth.example/.well-known/jwks.json \\
    TOKENWARD_ISSUER=https://auth.example TOKENWARD_AUDIENCE=api \\
    python examples/fastapi_app.py

``TOKENWARD_JWKS`` is a URL (fetched, cached and refetched on rotation; needs httpx, the
``client`` extra) or a JWKS file.
``TOKENWARD_TOKEN_URL`` is where the docs log in (default ``$TOKENWARD_ISSUER/oauth/token``),
``PORT`` the port on 127.0.0.1 (default 8000; 0 picks a free one).
"""

import asyncio
import math
import os
import secrets
import socket
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import parse_qsl

import uvicorn
from fastapi import FastAPI, Request, Security
from fastapi.responses import JSONResponse

from tokenward.integrations.fastapi import require_token
from tokenward.service import (
    AccessClaims,
    AuthenticationError,
    Clock,
    InvalidScopeError,
    LoginThrottledError,
    PasswordHasher,
    RemoteJWKS,
    StaticKeys,
    TokenPolicy,
    TokenService,
    UserService,
    Verifier,
)
from tokenward.stores.memory import MemoryStore

SCOPES = {"read": "List the items", "write": "Add items"}
DEMO_ISSUER = "https://auth.example"
DEMO_AUDIENCE = "api"
DEMO_TOKEN_PATH = "/demo/token"
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


def create_app(verifier: Verifier, *, token_url: str, users: UserService | None = None) -> FastAPI:
    """The API: ``/items`` needs ``read`` to list and ``write`` to add; ``/me`` any token."""
    bearer = require_token(verifier, token_url=token_url, scopes=SCOPES)
    app = FastAPI(title="tokenward example API")
    items: list[str] = ["first item"]

    @app.get("/health")
    async def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/me")
    async def me(claims: Annotated[AccessClaims, Security(bearer)]) -> dict[str, Any]:
        return {"sub": claims.sub, "sid": claims.sid, "scopes": sorted(claims.scopes)}

    @app.get("/items")
    async def list_items(
        claims: Annotated[AccessClaims, Security(bearer, scopes=["read"])],
    ) -> dict[str, Any]:
        return {"items": items, "for": claims.sub}

    @app.post("/items", status_code=201)
    async def add_item(
        name: str, claims: Annotated[AccessClaims, Security(bearer, scopes=["write"])]
    ) -> dict[str, Any]:
        items.append(name)
        return {"added": name, "by": claims.sub}

    if users is not None:
        _add_demo_login(app, users)
    return app


def _token_response(
    body: dict[str, Any], status: int = 200, headers: dict[str, str] | None = None
) -> JSONResponse:
    # RFC 6749 sec. 5.1: a response carrying tokens MUST NOT be cached; errors likewise.
    return JSONResponse(body, status, headers={**NO_STORE, **(headers or {})})


def _add_demo_login(app: FastAPI, users: UserService) -> None:
    # The OAuth 2.0 password grant (RFC 6749 sec. 4.3), just enough for the docs' login
    # dialog, answering as sec. 5.1 and 5.2 require. A real deployment logs in at the
    # tokenward auth server's /oauth/token instead.
    @app.post(DEMO_TOKEN_PATH, include_in_schema=False)
    async def token(request: Request) -> JSONResponse:
        fields = parse_qsl((await request.body()).decode("utf-8", "replace"))
        form = dict(fields)
        if form.get("grant_type", "password") != "password":
            return _token_response({"error": "unsupported_grant_type"}, 400)
        # Sec. 3.2: no parameter more than once; sec. 4.3.2: these three are required.
        if len(form) != len(fields) or not {"grant_type", "username", "password"} <= set(form):
            return _token_response({"error": "invalid_request"}, 400)
        scope = form.get("scope", "").split() or None
        try:
            pair = await users.login(form["username"], form["password"], scope=scope)
        except InvalidScopeError:
            return _token_response({"error": "invalid_scope"}, 400)
        except LoginThrottledError as exc:
            retry = str(max(1, math.ceil(exc.retry_after)))
            return _token_response({"error": "invalid_grant"}, 429, {"Retry-After": retry})
        except AuthenticationError:
            return _token_response({"error": "invalid_grant"}, 400)
        return _token_response(
            {
                "access_token": pair.access_token,
                "token_type": "Bearer",
                "expires_in": pair.expires_in,
                "scope": pair.scope,
            }
        )


@dataclass
class Demo:
    """The demo's token service, users, and a first token for the printed curl command."""

    service: TokenService
    users: UserService
    password: str
    access_token: str


async def demo_setup(*, clock: Clock | None = None, hasher: PasswordHasher | None = None) -> Demo:
    """A token service on an in-memory store, a demo user, and a token for them."""
    store = MemoryStore()
    policy = TokenPolicy(issuer=DEMO_ISSUER, audience=DEMO_AUDIENCE)
    service = await TokenService.create(store, policy, clock=clock)
    users = UserService(store, service, hasher=hasher)
    password = secrets.token_urlsafe(12)
    await users.create_user("demo", password, scopes=["read", "write"])
    pair = await users.login("demo", password)
    return Demo(service, users, password, pair.access_token)


def verifier_from_env(jwks: str) -> Verifier:
    """A verifier over a JWKS URL or file, with the issuer and audience from the environment."""
    source = (
        RemoteJWKS(jwks) if jwks.startswith(("https://", "http://")) else StaticKeys.from_file(jwks)
    )
    return Verifier(
        source,
        issuer=os.environ.get("TOKENWARD_ISSUER", DEMO_ISSUER),
        audience=os.environ.get("TOKENWARD_AUDIENCE", DEMO_AUDIENCE),
    )


async def serve() -> None:
    """Build the app from the environment and serve it on 127.0.0.1 until interrupted."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", int(os.environ.get("PORT", "8000"))))
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    jwks = os.environ.get("TOKENWARD_JWKS")
    if jwks:
        issuer = os.environ.get("TOKENWARD_ISSUER", DEMO_ISSUER)
        token_url = os.environ.get("TOKENWARD_TOKEN_URL", issuer.rstrip("/") + "/oauth/token")
        app = create_app(verifier_from_env(jwks), token_url=token_url)
        print(f"tokenward FastAPI example on {base} (docs: {base}/docs)", flush=True)
    else:
        demo = await demo_setup()
        app = create_app(demo.service.verifier, token_url=DEMO_TOKEN_PATH, users=demo.users)
        print(f"tokenward FastAPI example on {base} (docs: {base}/docs)")
        print(f"demo user: demo, password: {demo.password}")
        print(f"access token: {demo.access_token}")
        print(f"try: curl -H 'Authorization: Bearer {demo.access_token}' {base}/items", flush=True)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(serve())
