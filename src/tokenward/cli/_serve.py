"""``tokenward serve``: run the auth server.

Before listening, ``serve`` opens the store and loads the signing keys (creating the
first one on a fresh store), so that a wrong setting, an unreachable store or a wrong
key-encryption key is one error line and a non-zero exit status, not a traceback in
the server log. It then binds the socket itself, so "address in use" is an error line
too, prints where it listens and the exact command that adds a user, and runs the app
under uvicorn. SIGINT and SIGTERM stop it gracefully: uvicorn stops accepting
connections, lets requests in flight finish (at most :data:`GRACEFUL_SHUTDOWN_SECONDS`),
runs the app's shutdown, and the command exits with status 0.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from tokenward import __version__
from tokenward.cli._commands import EXIT_OK, Subparsers, add_command
from tokenward.cli._io import note
from tokenward.cli._runtime import (
    Runtime,
    add_settings_options,
    config_file,
    display_store_url,
    load_cli_settings,
    run_on_store,
    server_module,
)
from tokenward.errors import ConfigurationError, TokenwardError

if TYPE_CHECKING:
    import uvicorn

    from tokenward.server import Settings

__all__ = ["GRACEFUL_SHUTDOWN_SECONDS", "ServerStartupError", "register"]

GRACEFUL_SHUTDOWN_SECONDS = 10
"""How long a stopping server waits for requests in flight before closing them."""


_BACKLOG = 2048
"""The listen backlog, uvicorn's default."""


class ServerStartupError(TokenwardError):
    """The server process could not start serving (exit status 2); the log says why."""

    code = "startup_failed"


def register(commands: Subparsers) -> None:
    """Add the ``serve`` command to the ``tokenward`` parser."""
    parser = add_command(
        commands,
        "serve",
        _serve,
        summary="run the auth server",
        description=(
            "Run the auth server: OAuth 2.0 token, revocation and introspection\n"
            "endpoints, JWKS, sessions and users. Settings come from --config (or\n"
            "$TOKENWARD_CONFIG), then TOKENWARD_* variables, then these options. The\n"
            "store defaults to sqlite:///tokenward.db in the working directory; the\n"
            "first start creates the signing keys. SIGINT or SIGTERM stops it gracefully."
        ),
        examples=(
            "  tokenward serve\n"
            "  tokenward serve --port 9000 --store sqlite:////var/lib/tokenward/auth.db\n"
            "  TOKENWARD_STORE=redis://127.0.0.1:6379/0 tokenward serve --host 0.0.0.0"
        ),
    )
    parser.add_argument("--host", metavar="HOST", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, metavar="PORT", help="port to listen on (default 8000)")
    add_settings_options(parser)


# -- what it prints -------------------------------------------------------------------


def _url(host: str, port: int) -> str:
    from tokenward.server._config import http_url  # The server extra is imported late.

    return http_url(host, port)


def add_user_command(settings: Settings, config: str | None) -> str:
    """The exact command that adds a user to the store this server uses.

    It names the store (with any password masked) and the configuration file, so that
    it works from any directory and any environment.
    """
    argv = ["tokenward", "users", "add", "NAME"]
    if config is not None:
        argv += ["--config", str(Path(config).absolute())]
    argv += ["--store", display_store_url(settings.store)]
    return shlex.join(argv)


async def _count_users(runtime: Runtime) -> int:
    return len(await runtime.store.list_users())


# -- running --------------------------------------------------------------------------


def _bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"host: cannot resolve {host!r} ({exc.strerror})") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now makes the banner true at once: connections made while the app
        # starts up wait in the backlog instead of being refused.
        sock.listen(_BACKLOG)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(
            f"cannot listen on {_url(host, port)}: {exc.strerror or exc}"
        ) from None
    return sock


@contextmanager
def _graceful_signals(server: uvicorn.Server) -> Iterator[None]:
    """Let SIGINT and SIGTERM stop ``server`` gracefully, and exit 0 afterwards.

    uvicorn installs its own handlers while it serves, and after a graceful stop raises
    the captured signal again under the handlers it found: with the default ones, a
    SIGTERM would kill the process (status -15) and a SIGINT end in KeyboardInterrupt.
    These handlers make that second delivery (and one arriving before uvicorn starts
    listening) a request to stop, which is what happened already.
    """

    def stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _server(settings: Settings) -> uvicorn.Server:
    # Imported here: only this command needs the web stack.
    server = server_module()
    try:
        import uvicorn
    except ImportError:
        raise ConfigurationError(
            "tokenward serve needs uvicorn; install it with the server dependencies"
        ) from None

    # Audit events and server logs as JSON lines on stderr; uvicorn logs its own lines.
    server.configure_logging(settings.log_level)
    return uvicorn.Server(
        uvicorn.Config(
            server.create_app(settings),
            log_level=settings.log_level.lower(),
            # The app applies trusted_proxies itself; uvicorn must not rewrite the
            # client address from X-Forwarded-For before it does.
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        )
    )


def _banner(settings: Settings, config: str | None, users: int | None) -> None:
    where = _url(settings.host, settings.port)
    store = display_store_url(settings.store)
    note(f"tokenward {__version__} auth server listening on {where} (store {store})")
    if users is None:
        note("the memory:// store keeps nothing: users and sessions end with the server")
        return
    if users == 0:
        note("no users yet")
    note(f"add a user with: {add_user_command(settings, config)}")


def _serve(args: argparse.Namespace) -> int:
    config = config_file(args)
    settings = load_cli_settings(args, host=args.host, port=args.port)
    # Opening the store here loads (or, on the first start, creates) the signing keys.
    users = None if settings.store.startswith("memory:") else run_on_store(settings, _count_users)
    with _bind(settings.host, settings.port) as sock:
        server = _server(settings)
        _banner(settings, config, users)
        try:
            with _graceful_signals(server):
                server.run(sockets=[sock])
        except SystemExit as exc:
            # uvicorn exits this way when the app's startup fails; its log says why.
            raise ServerStartupError(f"the server did not start (status {exc.code})") from None
    if not server.started:
        raise ServerStartupError("the server did not start")
    note("tokenward: stopped")
    return EXIT_OK
