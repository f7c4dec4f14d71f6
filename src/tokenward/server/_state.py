"""The running server's state: settings, store, services, metrics; one per application.

The services exist only between lifespan startup and shutdown; reaching for them at any
other time is a programming error, reported as such. Endpoints get the state with
:func:`runtime`.

Signing keys can change under a running process: another instance rotates, or an
operator runs ``tokenward keys rotate``. A token signed by a key this process has not
loaded yet fails with ``key_not_found``; the token service then reloads the key ring from
the store (rate limited by its key source, so forged ``kid`` values cannot make every
request a store read) and verifies once more.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request

from tokenward.server._config import Settings
from tokenward.server._metrics import Metrics
from tokenward.service import (
    AccessClaims,
    Clock,
    TokenPair,
    TokenService,
    UserService,
)
from tokenward.stores import Store

__all__ = ["Runtime", "runtime"]


@dataclass
class Runtime:
    """Everything an endpoint needs; ``store``, ``tokens`` and ``users`` once started."""

    settings: Settings
    clock: Clock
    metrics: Metrics = field(default_factory=Metrics)
    _store: Store | None = None
    _tokens: TokenService | None = None
    _users: UserService | None = None

    def start(self, store: Store, tokens: TokenService, users: UserService) -> None:
        """Install the services (lifespan startup)."""
        self._store, self._tokens, self._users = store, tokens, users

    def stop(self) -> None:
        """Forget the services (lifespan shutdown)."""
        self._store = self._tokens = self._users = None

    @property
    def started(self) -> bool:
        """True between startup and shutdown."""
        return self._tokens is not None

    @property
    def store(self) -> Store:
        """The session and user store."""
        if self._store is None:
            raise RuntimeError("the tokenward app is not started (run its lifespan)")
        return self._store

    @property
    def tokens(self) -> TokenService:
        """The token service."""
        if self._tokens is None:
            raise RuntimeError("the tokenward app is not started (run its lifespan)")
        return self._tokens

    @property
    def users(self) -> UserService:
        """The user service."""
        if self._users is None:
            raise RuntimeError("the tokenward app is not started (run its lifespan)")
        return self._users

    async def verify_access(self, token: str) -> AccessClaims:
        """Verify an access token (no store I/O unless its key is new to this process)."""
        return await self.tokens.verify_access_async(token)

    async def refresh(
        self, token: str, *, scope: tuple[str, ...] | None = None, client_id: str | None = None
    ) -> TokenPair:
        """Rotate a refresh token (see :meth:`TokenService.refresh`)."""
        return await self.tokens.refresh(token, scope=scope, client_id=client_id)

    async def verify_refresh(self, token: str) -> dict[str, Any]:
        """Verify a refresh token WITHOUT rotating it (no store I/O); see
        :meth:`TokenService.verify_refresh`."""
        return await self.tokens.verify_refresh_async(token)


def runtime(request: Request) -> Runtime:
    """The :class:`Runtime` of the application serving ``request``."""
    state: Runtime = request.app.state.tokenward
    return state
