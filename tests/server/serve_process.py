"""One real auth server process (uvicorn) on a loopback port, for the multi-process tests.

    python -m tests.server.serve_process BACKEND URL NAMESPACE REUSE_GRACE

BACKEND is ``redis`` or ``postgres``; NAMESPACE is the Redis key prefix or PostgreSQL
schema that isolates one test (a store URL cannot carry it, so the store object is
opened here and handed to ``create_app``). The process binds an ephemeral port, prints
it on stdout, logs JSON lines to stderr, serves until SIGTERM and then shuts down
gracefully (uvicorn then re-raises the signal, so the exit status is -SIGTERM).
"""

from __future__ import annotations

import asyncio
import socket
import sys
from dataclasses import replace

import uvicorn

from tests.server.conftest import make_settings
from tokenward.server import configure_logging, create_app
from tokenward.stores import Store


async def _open(backend: str, url: str, namespace: str) -> Store:
    if backend == "redis":
        from tokenward.stores.redis import RedisStore

        return await RedisStore.connect(url, prefix=namespace)
    from tokenward.stores.postgres import PostgresStore

    return await PostgresStore.connect(url, schema=namespace)


async def main(backend: str, url: str, namespace: str, grace: str) -> None:
    """Serve until told to stop."""
    configure_logging("INFO")
    store = await _open(backend, url, namespace)
    try:
        settings = replace(make_settings(), reuse_grace=float(grace))
        # A short feed interval, so revocations reach the other process within the test.
        app = create_app(settings, store=store, feed_interval=0.05)
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        print(sock.getsockname()[1], flush=True)  # the parent reads the port
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        await server.serve(sockets=[sock])
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
