"""A real auth server process (uvicorn) on a loopback port, over an in-memory store.

    python -m tests.client.serve_process

Like ``tests/server/serve_process.py``, without the Redis or PostgreSQL it needs: the
process opens a MemoryStore, creates the user ``ada`` (password
``tests.server.conftest.PASSWORD``), binds an ephemeral port on 127.0.0.1, prints it on
stdout, logs JSON lines to stderr and serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import socket

import uvicorn

from tests.server.conftest import FAST_ARGON2, PASSWORD, make_settings
from tokenward.server import configure_logging, create_app
from tokenward.service import Argon2Parameters, PasswordHasher
from tokenward.stores import MemoryStore, UserRecord


async def main() -> None:
    """Serve until told to stop."""
    configure_logging("INFO")
    store = MemoryStore()
    hasher = PasswordHasher(
        Argon2Parameters(
            time_cost=FAST_ARGON2["argon2_time_cost"],
            memory_cost=FAST_ARGON2["argon2_memory_cost"],
            parallelism=FAST_ARGON2["argon2_parallelism"],
        )
    )
    await store.create_user(
        UserRecord("u-ada", "ada", hasher.hash(PASSWORD), 0.0, 0.0, scopes=("read",))
    )
    app = create_app(make_settings(), store=store)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    print(sock.getsockname()[1], flush=True)  # the parent reads the port
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    await server.serve(sockets=[sock])


if __name__ == "__main__":
    asyncio.run(main())
