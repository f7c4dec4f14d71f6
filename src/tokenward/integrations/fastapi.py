"""FastAPI: a ``Security`` dependency that verifies the bearer token and checks scopes.

::

    from fastapi import FastAPI, Security
    from tokenward.integrations.fastapi import require_token

    bearer = require_token(verifier, token_url="https://auth.example/oauth/token",
                           scopes={"read": "Read your data", "write": "Change it"})
    app = FastAPI()

    @app.get("/items")
    async def items(claims: AccessClaims = Security(bearer, scopes=["read"])) -> ...:
        return {"user": claims.sub}

The dependency is an OAuth2 password-flow security scheme: it appears in the OpenAPI
document (``components.securitySchemes``, and each operation's ``security`` with the
scopes it asked for), so the interactive docs' *Authorize* button logs in at
``token_url`` (from the browser: only on the docs page's own origin, since the tokenward
auth server sends no CORS headers). Scopes come from FastAPI's ``SecurityScopes``: those
of every ``Security(...)`` on the path are required together. It serves websocket
routes too.

Under :class:`~tokenward.integrations.TokenwardMiddleware` in cookie mode, a request
without an ``Authorization`` header is authenticated by the claims the middleware
verified from its cookie, if it verified them with this dependency's own verifier.

Refusals are :class:`fastapi.HTTPException` with the RFC 6750 ``WWW-Authenticate``
challenge (401, 400 ``invalid_request``, 403 ``insufficient_scope``); the body is
FastAPI's ``{"detail": "<error code>"}``, and the precise reason goes to the log.

The dependency is a coroutine (a plain ``def`` dependency would run in the thread pool,
costing about 110 us a request), and verifies with the sync, I/O-free
``Verifier.verify``; see :mod:`tokenward.integrations.asgi` for when ``verify_async``
is used instead.
"""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import HTTPException
from fastapi.openapi.models import OAuth2 as OAuth2Model
from fastapi.openapi.models import OAuthFlowPassword, OAuthFlows
from fastapi.security import SecurityScopes
from fastapi.security.base import SecurityBase
from starlette.requests import HTTPConnection

from tokenward.errors import ConfigurationError, InvalidTokenError
from tokenward.integrations._bearer import (
    Challenges,
    InvalidRequestError,
    Refusal,
    header_token,
    needs_async,
    require_http_client,
    verify,
)
from tokenward.integrations.asgi import SCOPE_KEY, VERIFIER_KEY
from tokenward.service import AccessClaims, InsufficientScopeError, Verifier

__all__ = ["TokenwardBearer", "require_token"]


def _http_error(refusal: Refusal) -> HTTPException:
    return HTTPException(refusal.status, detail=refusal.error, headers=refusal.headers)


class TokenwardBearer(SecurityBase):
    """The security dependency built by :func:`require_token`."""

    def __init__(
        self,
        verifier: Verifier,
        *,
        token_url: str = "/oauth/token",  # noqa: S107 (a URL, not a secret)
        refresh_url: str | None = None,
        scopes: Mapping[str, str] | None = None,
        scheme_name: str = "tokenward",
        description: str | None = None,
        realm: str = "tokenward",
        auto_error: bool = True,
    ) -> None:
        if not isinstance(verifier, Verifier):
            raise ConfigurationError("require_token needs a tokenward Verifier")
        require_http_client(verifier.keys)
        self.verifier = verifier
        self.model = OAuth2Model(
            flows=OAuthFlows(
                password=OAuthFlowPassword(
                    tokenUrl=token_url, refreshUrl=refresh_url, scopes=dict(scopes or {})
                )
            ),
            description=description,
        )
        self.scheme_name = scheme_name
        self.auto_error = auto_error
        self._async = needs_async(verifier)
        self._challenges = Challenges(realm)

    # HTTPConnection, not Request: FastAPI passes it to http and websocket routes alike.
    async def __call__(
        self, connection: HTTPConnection, security_scopes: SecurityScopes
    ) -> AccessClaims | None:
        """The verified claims; None without credentials when ``auto_error`` is False."""
        scope = connection.scope
        try:
            token = header_token(scope["headers"])
        except InvalidRequestError:
            raise _http_error(self._challenges.invalid_request) from None
        if token is None:
            claims = scope.get(SCOPE_KEY)
            # TokenwardMiddleware verified a token from its sliding cookie. Its claims are
            # reused only when it verified them with this very verifier (the same keys,
            # issuer, audience and deny list); the middleware alone sets both keys.
            if isinstance(claims, AccessClaims) and scope.get(VERIFIER_KEY) is self.verifier:
                refusal = self._challenges.scope_refusal(claims, security_scopes.scopes)
                if refusal is not None:
                    raise _http_error(refusal)
                return claims
            if not self.auto_error:
                return None
            raise _http_error(self._challenges.missing)
        try:
            return await verify(self.verifier, token, security_scopes.scopes, use_async=self._async)
        except (InvalidTokenError, InsufficientScopeError) as exc:
            raise _http_error(self._challenges.for_error(exc, token)) from None


def require_token(
    verifier: Verifier,
    *,
    token_url: str = "/oauth/token",  # noqa: S107 (a URL, not a secret)
    refresh_url: str | None = None,
    scopes: Mapping[str, str] | None = None,
    scheme_name: str = "tokenward",
    description: str | None = None,
    realm: str = "tokenward",
    auto_error: bool = True,
) -> TokenwardBearer:
    """A dependency for ``Security(require_token(verifier), scopes=[...])``.

    * ``token_url``: where the interactive docs log in (the auth server's
      ``/oauth/token``); ``refresh_url`` likewise, if any.
    * ``scopes``: scope names and descriptions, shown in the docs' login dialog.
    * ``scheme_name``: the security scheme's name in the OpenAPI document.
    * ``auto_error=False``: return None instead of refusing a request *without*
      credentials (optional authentication); bad credentials are still refused.

    Build it once and share it: FastAPI runs one dependency instance once per request
    however many ``Security`` markers name it.
    """
    return TokenwardBearer(
        verifier, token_url=token_url, refresh_url=refresh_url, scopes=scopes,
        scheme_name=scheme_name, description=description, realm=realm, auto_error=auto_error,
    )  # fmt: skip
