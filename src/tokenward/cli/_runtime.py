"""What the server-side commands share: settings, the store, and the services over it.

``users``, ``sessions`` and ``keys rotate``/``keys list`` work on the server's store
directly, with no server running (or while one runs: every server process reads the
same store, and revocations reach them through its revocation feed). They read the
settings exactly as ``tokenward serve`` does (``--config`` or ``$TOKENWARD_CONFIG``,
then ``TOKENWARD_*`` variables, then ``--store``) and build the same services over the
store, here and only here::

    settings = load_cli_settings(args)
    count = run_on_store(settings, lambda runtime: runtime.tokens.revoke_all())

Opening the store creates the first signing key when the store has none, as the
server's first start does; encrypted keys need the same key-encryption key
(``TOKENWARD_KEK``) as the server.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

from tokenward.cli._commands import RefusedError
from tokenward.cli._io import UsageError
from tokenward.errors import ConfigurationError

# The server, service and store packages (and asyncio) are imported when a command
# runs, not when the parser is built: ``tokenward token verify`` starts without them.
if TYPE_CHECKING:
    from tokenward.server import Settings
    from tokenward.service import TokenService, UserService
    from tokenward.stores import Store, UserRecord

__all__ = [
    "CONFIG_ENV",
    "Runtime",
    "UnknownSessionIDError",
    "UnknownUserError",
    "add_settings_options",
    "display_store_url",
    "load_cli_settings",
    "open_runtime",
    "run_on_store",
    "server_module",
]

T = TypeVar("T")

CONFIG_ENV = "TOKENWARD_CONFIG"
"""The environment variable naming the TOML configuration file when --config is not given."""


class UnknownUserError(RefusedError):
    """No user has the name given on the command line."""

    code = "unknown_user"


class UnknownSessionIDError(RefusedError):
    """No active session has the ``sid`` given on the command line."""

    code = "unknown_session"


def add_settings_options(parser: argparse.ArgumentParser) -> None:
    """Add ``--store`` and ``--config``, which every server-side command takes."""
    parser.add_argument(
        "--store",
        metavar="URL",
        help=(
            "sqlite:///path.db, redis://host:port/db, redis+cluster://host:port[,host:port]"
            " or postgresql://user@host/db "
            "(default: $TOKENWARD_STORE, the config file, or sqlite:///tokenward.db)"
        ),
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"TOML configuration file (default: ${CONFIG_ENV}, if set)",
    )


def config_file(args: argparse.Namespace) -> str | None:
    """The configuration file named by ``--config`` or ``$TOKENWARD_CONFIG``, if any."""
    named: str | None = args.config or os.environ.get(CONFIG_ENV) or None
    return named


def server_module() -> ModuleType:
    """``tokenward.server``, or a one-line error when its web dependencies are missing."""
    try:
        import tokenward.server
    except ImportError as exc:
        raise ConfigurationError(
            f"the auth server commands need the server dependencies (missing module "
            f"{exc.name!r}); install them with the package"
        ) from None
    return tokenward.server


def load_cli_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    """Load and validate settings as ``tokenward serve`` does; flags override the rest.

    A bad setting raises :class:`~tokenward.errors.ConfigurationError` naming it (exit
    status 2).
    """
    server_module()  # one error line, not a traceback, if the web dependencies are missing
    from tokenward.server import load_settings

    return load_settings(
        config_file(args), env=os.environ, overrides={"store": args.store, **overrides}
    )


class Runtime:
    """The store and the services a server process builds over it.

    ``users`` is built on first use: its password hasher costs one argon2 hash to set
    up, which commands that never touch a password should not pay.
    """

    def __init__(
        self, settings: Settings, store: Store, tokens: TokenService, users: UserService
    ) -> None:
        self.settings = settings
        self.store = store
        self.tokens = tokens
        self.users = users

    async def require_user(self, username: str) -> UserRecord:
        """The user named ``username``; :class:`UnknownUserError` (exit status 1) if none."""
        user = await self.store.get_user(username)
        if user is None:
            raise UnknownUserError(f"no user named {username!r}")
        return user


@asynccontextmanager
async def open_runtime(settings: Settings) -> AsyncIterator[Runtime]:
    """Open the configured store, load (or create) the signing keys, and close it after."""
    from tokenward.server import open_services
    from tokenward.stores import open_store

    try:
        store = await open_store(settings.store)
    except ImportError as exc:
        scheme = settings.store.partition(":")[0]
        raise ConfigurationError(
            f"the {scheme} store needs the Python package {exc.name!r}; "
            "install tokenward with the matching extra (redis or postgres)"
        ) from None
    try:
        tokens, users = await open_services(settings, store)
        yield Runtime(settings, store, tokens, users)
    finally:
        await store.close()


def run_on_store(settings: Settings, action: Callable[[Runtime], Coroutine[Any, Any, T]]) -> T:
    """Run ``action`` on a freshly opened :class:`Runtime` and return its result.

    The service layer's audit events are kept off the terminal: with no logging
    configured, Python would print each warning-level event as a bare line on stderr,
    where only the command's own notes and its one error line belong.
    """
    if settings.store.startswith("memory:"):
        raise UsageError(
            "the memory:// store keeps nothing between processes; "
            "name the server's store with --store or TOKENWARD_STORE"
        )

    import asyncio

    async def body() -> T:
        async with open_runtime(settings) as runtime:
            return await action(runtime)

    quiet = logging.NullHandler()
    logger = logging.getLogger("tokenward")
    logger.addHandler(quiet)
    try:
        return asyncio.run(body())
    finally:
        logger.removeHandler(quiet)


def display_store_url(url: str) -> str:
    """``url`` fit to print: secrets masked, a relative SQLite path made absolute.

    A password in the user information or in the query (``?password=``,
    ``?sslpassword=``, ...) is shown as ``***``, as is every query value that is not
    known to be harmless (see :func:`tokenward.stores.redact_store_url`).

    >>> display_store_url("redis://:hunter2@cache:6379/0")
    'redis://:***@cache:6379/0'
    """
    if url.startswith("sqlite://"):
        path = url.partition("://")[2]
        path = path[1:] if path.startswith("/") else path
        # sqlite:////abs/path.db: three slashes, then the absolute path's own.
        return "sqlite:///" + str(Path(path).absolute())
    from tokenward.stores import redact_store_url

    return redact_store_url(url)
