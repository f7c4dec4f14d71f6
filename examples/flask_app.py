"""A Flask resource server that accepts tokenward access tokens.

Run it (from the repository root)::

    python examples/flask_app.py

With no configuration it runs a self-contained demo: a TokenService on an in-memory
store in this process, which prints a ready access token and a curl command. Against a
real auth server::

    TOKENWARD_JWKS=https://auth.example/.well-known/jwks.json \\
    TOKENWARD_ISSUER=https://auth.example TOKENWARD_AUDIENCE=api \\
    python examples/flask_app.py

``TOKENWARD_JWKS`` is a JWKS file, or a URL that a background thread loads before the
first request and keeps fresh (Flask verifies synchronously and never fetches keys
during a request). ``PORT`` is the port on 127.0.0.1 (default 5000; 0 picks a free one).
"""

import asyncio
import os
from typing import Any

from flask import Flask, request
from werkzeug.serving import make_server

from tokenward.integrations.flask import (
    BackgroundKeyRefresh,
    Tokenward,
    current_claims,
    require_token,
)
from tokenward.service import Clock, RemoteJWKS, StaticKeys, TokenPolicy, TokenService, Verifier
from tokenward.stores.memory import MemoryStore

DEMO_ISSUER = "https://auth.example"
DEMO_AUDIENCE = "api"


def create_app(verifier: Verifier) -> Flask:
    """The API: ``/items`` needs ``read`` to list and ``write`` to add; ``/me`` any token."""
    app = Flask(__name__)
    Tokenward(app, verifier)
    items: list[str] = ["first item"]

    @app.get("/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    @app.get("/me")
    @require_token
    def me() -> dict[str, Any]:
        claims = current_claims()
        return {"sub": claims.sub, "sid": claims.sid, "scopes": sorted(claims.scopes)}

    @app.get("/items")
    @require_token(scopes=["read"])
    def list_items() -> dict[str, Any]:
        return {"items": items, "for": current_claims().sub}

    @app.post("/items")
    @require_token(scopes=["write"])
    def add_item() -> tuple[dict[str, Any], int]:
        name = request.args.get("name", "")
        items.append(name)
        return {"added": name, "by": current_claims().sub}, 201

    return app


async def demo_setup(*, clock: Clock | None = None) -> tuple[TokenService, str]:
    """A token service on an in-memory store, and an access token for a demo user."""
    policy = TokenPolicy(issuer=DEMO_ISSUER, audience=DEMO_AUDIENCE)
    service = await TokenService.create(MemoryStore(), policy, clock=clock)
    pair = await service.issue("demo", scope="read write")
    return service, pair.access_token


def verifier_from_env(jwks: str) -> tuple[Verifier, BackgroundKeyRefresh | None]:
    """A verifier over a JWKS file, or over a URL kept fresh by a background thread."""
    issuer = os.environ.get("TOKENWARD_ISSUER", DEMO_ISSUER)
    audience = os.environ.get("TOKENWARD_AUDIENCE", DEMO_AUDIENCE)
    if not jwks.startswith(("https://", "http://")):
        return Verifier(StaticKeys.from_file(jwks), issuer=issuer, audience=audience), None
    source = RemoteJWKS(jwks)
    refresher = BackgroundKeyRefresh(source)
    refresher.start()  # Loads the keys now: a wrong URL stops the app here.
    return Verifier(source, issuer=issuer, audience=audience), refresher


def main() -> None:
    """Build the app from the environment and serve it on 127.0.0.1 until interrupted."""
    jwks = os.environ.get("TOKENWARD_JWKS")
    refresher = None
    if jwks:
        verifier, refresher = verifier_from_env(jwks)
        token = None
    else:
        # The service's verifier holds its keys in process: nothing is ever fetched.
        service, token = asyncio.run(demo_setup())
        verifier = service.verifier
    server = make_server("127.0.0.1", int(os.environ.get("PORT", "5000")), create_app(verifier))
    base = f"http://127.0.0.1:{server.server_port}"
    print(f"tokenward Flask example on {base}")
    if token is not None:
        print(f"access token: {token}")
        print(f"try: curl -H 'Authorization: Bearer {token}' {base}/items")
    print(flush=True, end="")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        if refresher is not None:
            refresher.stop()


if __name__ == "__main__":
    main()
