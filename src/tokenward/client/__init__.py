"""tokenward.client: an ``httpx.Auth`` that logs in, attaches and renews access tokens.

>>> import httpx
>>> from tokenward.client import TokenwardAuth
>>> auth = TokenwardAuth("https://auth.example/oauth/token", client_id="web",
...                      username="ada", password="correct horse battery staple")
>>> client = httpx.Client(auth=auth)

See ``docs/client.md``.
"""

from __future__ import annotations

from tokenward.client._auth import AsyncTokenwardAuth, TokenwardAuth
from tokenward.client._errors import (
    ClientError,
    LoginFailedError,
    LoginRequiredError,
    TokenEndpointError,
    TokenStorageError,
)
from tokenward.client._storage import (
    FileTokenStorage,
    MemoryTokenStorage,
    StoredToken,
    TokenStorage,
)

__all__ = [
    "AsyncTokenwardAuth",
    "ClientError",
    "FileTokenStorage",
    "LoginFailedError",
    "LoginRequiredError",
    "MemoryTokenStorage",
    "StoredToken",
    "TokenEndpointError",
    "TokenStorage",
    "TokenStorageError",
    "TokenwardAuth",
]
