"""``GET /.well-known/jwks.json`` and ``GET /.well-known/oauth-authorization-server``.

The JWKS lists every published key (``next``, ``current`` and ``retired``), public halves
only, and may be cached for ``jwks_max_age`` seconds: the rotation schedule publishes a
``next`` key at least that long before it signs anything, so a verifier with a cached
copy never meets an unknown ``kid`` from a scheduled rotation. HMAC keys are never
published (the document is then empty).

The metadata document (RFC 8414) is derived from the configured ``issuer``, which is the
externally visible base URL (behind a proxy, the proxy's URL and path prefix).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tokenward.server._config import Settings
from tokenward.server._http import INTROSPECT_PATH, JWKS_PATH, REVOKE_PATH, TOKEN_PATH
from tokenward.server._state import runtime

__all__ = ["jwks_endpoint", "metadata", "metadata_endpoint"]


def metadata(settings: Settings) -> dict[str, Any]:
    """The RFC 8414 authorization server metadata for these settings."""
    base = settings.issuer.rstrip("/")
    return {
        "issuer": settings.issuer,
        "token_endpoint": base + TOKEN_PATH,
        "revocation_endpoint": base + REVOKE_PATH,
        "introspection_endpoint": base + INTROSPECT_PATH,
        "jwks_uri": base + JWKS_PATH,
        "grant_types_supported": ["password", "refresh_token"],
        # No authorization endpoint: only the token endpoint's grants are offered.
        "response_types_supported": [],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "none"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic"],
        "service_documentation": base + "/docs",
    }


async def jwks_endpoint(request: Request) -> Response:
    """The public signing keys, cacheable for ``jwks_max_age`` seconds."""
    state = runtime(request)
    return JSONResponse(
        state.tokens.keyring.jwks(),
        headers={"Cache-Control": f"public, max-age={state.settings.jwks_max_age}"},
    )


async def metadata_endpoint(request: Request) -> Response:
    """The RFC 8414 metadata document."""
    state = runtime(request)
    return JSONResponse(
        metadata(state.settings),
        headers={"Cache-Control": f"public, max-age={state.settings.jwks_max_age}"},
    )
