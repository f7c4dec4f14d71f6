"""tokenward.integrations: bearer-token verification for web frameworks.

* :mod:`tokenward.integrations.asgi`: :class:`TokenwardMiddleware`, a pure ASGI
  middleware (Starlette, FastAPI, Litestar, ...), and :class:`SlidingConfig`.
* :mod:`tokenward.integrations.fastapi`: ``Security(require_token(verifier), scopes=[...])``,
  an OAuth2 password-flow security scheme in the OpenAPI document.
* :mod:`tokenward.integrations.flask`: the ``Tokenward`` extension and ``@require_token``.
* :mod:`tokenward.integrations.django`: a Django middleware and ``@require_token``.
* :class:`BackgroundKeyRefresh`: keeps a remote JWKS fresh from a thread, for the
  synchronous frameworks (Flask, Django), which never fetch keys during a request.

Importing this package imports no framework: only the framework-free pieces are
re-exported here, and each framework module is imported by name when used.
"""

from __future__ import annotations

from tokenward.integrations._refresh import BackgroundKeyRefresh
from tokenward.integrations.asgi import SlidingConfig, TokenwardMiddleware

__all__ = ["BackgroundKeyRefresh", "SlidingConfig", "TokenwardMiddleware"]
