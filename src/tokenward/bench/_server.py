"""The real-time bench's server process: the auth server plus two protected resources.

    python -m tokenward.bench._server

Run by ``tokenward bench --real`` as a subprocess (uvicorn, one worker, 127.0.0.1 on an
ephemeral port, printed as one JSON line on stdout). Its configuration comes from the
environment, so that no store URL with a password shows in a process listing:

* ``TOKENWARD_BENCH_BACKEND``: sqlite, redis, postgres or memory;
* ``TOKENWARD_BENCH_STORE``: the SQLite file, Redis URL or PostgreSQL DSN;
* ``TOKENWARD_BENCH_NAMESPACE``: the Redis prefix or PostgreSQL schema (dropped at exit);
* ``TOKENWARD_BENCH_USERS`` and ``TOKENWARD_BENCH_PASSWORD``: accounts ``bench-0`` ...
  to create, all with that password.

Routes, besides the auth server's own (``/oauth/token`` and the rest):

* ``POST /bench/session/login`` (JSON ``username``, ``password``): checks the password as the
  auth server does, stores a server session (an opaque random id) and returns it;
* ``GET /bench/session/me``: the ``session`` cookie, looked up in the store (one read);
* ``GET /bench/jwt/me``: the bearer access token, verified with no store I/O;
* ``GET /bench/stats``: the store's operation count and this process's CPU time.

Both resources answer ``{"sub": ...}`` or 401, so their responses are the same size.
It is a bench fixture, bound to loopback only; it serves until SIGTERM.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import secrets
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

__all__ = ["main"]


async def _open_store(backend: str, where: str, namespace: str) -> Any:
    if backend == "sqlite":
        from tokenward.stores.sqlite import SQLiteStore

        return await SQLiteStore.open(where)
    if backend == "redis":
        from tokenward.stores.redis import RedisStore

        return await RedisStore.connect(where, prefix=namespace)
    if backend == "postgres":
        from tokenward.stores.postgres import PostgresStore

        return await PostgresStore.connect(where, schema=namespace)
    from tokenward.stores.memory import MemoryStore

    return MemoryStore()


def _app(store: Any, port: int, users: int, password: str) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Mount, Route

    from tokenward.bench._modes import SESSION_ID_BYTES, SessionLookup
    from tokenward.errors import InvalidTokenError, TokenwardError
    from tokenward.server import ClientConfig, Settings, create_app
    from tokenward.service import KeyRingKeys, PasswordHasher, UserService, Verifier
    from tokenward.stores import NewSession

    settings = Settings(
        host="127.0.0.1",
        port=port,
        clients=(ClientConfig("bench"),),
        # Logins are not measured; cheap hashes keep the set-up short.
        argon2_time_cost=1,
        argon2_memory_cost=8 * 1024,
        argon2_parallelism=1,
        log_level="WARNING",
    )
    auth = create_app(settings, store=store)
    lookup = SessionLookup(store)
    unauthorized = Response(status_code=401)
    state: dict[str, Any] = {}

    async def session_login(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
            user = await state["users"].authenticate(
                str(body["username"]), str(body["password"]), address=None
            )
        except (ValueError, KeyError, TypeError, TokenwardError):
            return unauthorized
        sid = secrets.token_urlsafe(SESSION_ID_BYTES)
        now = time.time()
        await store.create_session(
            NewSession(
                sid=sid,
                sub=user.sub,
                created_at=now,
                idle_expires_at=now + settings.idle_timeout,
                absolute_expires_at=now + settings.absolute_lifetime,
                refresh_hash=hashlib.sha256(secrets.token_bytes(32)).digest(),
                client_id="bench-session",
            )
        )
        return JSONResponse({"session": sid})

    async def session_me(request: Request) -> Response:
        sid = request.cookies.get("session")
        if not sid:
            return unauthorized
        sub = await lookup(sid, time.time())
        if sub is None:
            return unauthorized
        return JSONResponse({"sub": sub})

    async def jwt_me(request: Request) -> Response:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token:
            return unauthorized
        try:
            claims = state["verifier"].verify(token)
        except InvalidTokenError:
            return unauthorized
        return JSONResponse({"sub": claims.sub})

    async def stats(request: Request) -> Response:
        return JSONResponse(
            {"operations": getattr(store, "operations", 0), "cpu_seconds": time.process_time()}
        )

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        async with auth.router.lifespan_context(auth):
            tokens = auth.state.tokenward.tokens
            service = UserService(store, tokens, hasher=PasswordHasher(settings.argon2()))
            for number in range(users):
                if await store.get_user(f"bench-{number}") is None:
                    await service.create_user(f"bench-{number}", password, scopes=["api"])
            state["users"] = service
            # The resource server's verifier: the auth server's keys, no store I/O.
            state["verifier"] = Verifier(
                KeyRingKeys(tokens.keyring),
                issuer=settings.issuer,
                audience=settings.audience,
            )
            yield

    return Starlette(
        routes=[
            Route("/bench/session/login", session_login, methods=["POST"]),
            Route("/bench/session/me", session_me, methods=["GET"]),
            Route("/bench/jwt/me", jwt_me, methods=["GET"]),
            Route("/bench/stats", stats, methods=["GET"]),
            Mount("", app=auth),
        ],
        lifespan=lifespan,
    )


async def main() -> None:
    """Serve until SIGTERM, then drop the run's namespace and close the store."""
    import uvicorn

    env = os.environ
    backend = env.get("TOKENWARD_BENCH_BACKEND", "memory")
    namespace = env.get("TOKENWARD_BENCH_NAMESPACE", "")
    store = await _open_store(backend, env.get("TOKENWARD_BENCH_STORE", ""), namespace)
    try:
        # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets whose proto
        # says TCP, and accepted sockets inherit it. With proto 0, Nagle's algorithm
        # holds a response's second write (its body) for the client's delayed ACK:
        # about 40 ms per request on loopback.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        app = _app(
            store, port, int(env.get("TOKENWARD_BENCH_USERS", "1")), env["TOKENWARD_BENCH_PASSWORD"]
        )
        sys.stdout.write(json.dumps({"port": port}) + "\n")
        sys.stdout.flush()
        config = uvicorn.Config(app, log_level="warning", lifespan="on", access_log=False)
        # uvicorn handles SIGTERM (a graceful shutdown), then restores the handler it
        # found and raises the signal again; with the default handler that would end
        # the process before the namespace below is dropped, so the one it finds is a
        # no-op.
        signal.signal(signal.SIGTERM, lambda number, frame: None)
        await uvicorn.Server(config).serve(sockets=[sock])
    finally:
        try:
            if backend in ("redis", "postgres"):
                await store.drop()
        finally:
            await store.close()


if __name__ == "__main__":
    asyncio.run(main())
