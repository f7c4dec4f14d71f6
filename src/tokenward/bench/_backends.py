"""The stores the bench runs on, each isolated, cleaned up afterwards, and stoppable.

Every run gets its own namespace so it never touches an application's data: a fresh
SQLite file in a temporary directory, a Redis key prefix ``tokenward-bench-<random>``
or a PostgreSQL schema ``tokenward_bench_<random>``; all are deleted when the run ends.

The outage case needs a store it can take away and give back:

* Redis and PostgreSQL: the store connects through a :class:`CuttableProxy` on
  loopback; cutting it resets every connection and refuses new ones, as a dead server
  would, and the client reconnects by itself once it is restored.
* SQLite: the file cannot be locked against readers in WAL mode (every open connection
  holds a shared lock on it, so no exclusive lock can be taken while the store is
  open), and a closed store cannot be reopened in place. So the store's connections are
  made to abort every statement with ``SQLITE_INTERRUPT``, through SQLite's progress
  handler: each call then fails inside SQLite exactly as an unusable file fails it,
  raising :class:`~tokenward.stores.StoreUnavailableError`, and works again once the
  handler is removed.
* memory: there is nothing to stop; the outage case is skipped.
"""

from __future__ import annotations

import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from tokenward.errors import ConfigurationError
from tokenward.stores._url import redact_store_url

if TYPE_CHECKING:
    from tokenward.stores import Store
    from tokenward.testing import CuttableProxy

__all__ = [
    "BACKENDS",
    "DEFAULT_POSTGRES_DSN",
    "DEFAULT_REDIS_URL",
    "BackendSpec",
    "BenchStore",
    "display_url",
    "open_bench_store",
]

BACKENDS = ("sqlite", "redis", "postgres", "memory")
"""Every backend the bench knows; ``--store all`` means the first three."""

DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
DEFAULT_POSTGRES_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True, slots=True)
class BackendSpec:
    """Which backend, and where its server is (Redis URL, PostgreSQL DSN)."""

    name: str
    url: str = ""

    def __post_init__(self) -> None:
        if self.name not in BACKENDS:
            raise ConfigurationError(f"unknown store {self.name!r}: use {', '.join(BACKENDS)}")


@dataclass(slots=True)
class BenchStore:
    """One opened store with its namespace; :meth:`close` deletes what the run wrote."""

    spec: BackendSpec
    store: Store
    display: str
    """Where the store is, fit to print (no password)."""
    namespace: str
    """The SQLite file, Redis prefix or PostgreSQL schema of this run."""
    proxy: CuttableProxy | None = None
    _workdir: Path | None = None
    _down: bool = False

    @property
    def can_stop(self) -> bool:
        """True when :meth:`stop` can take this store away (not for memory)."""
        return self.spec.name != "memory"

    @property
    def operations(self) -> int:
        """The store's own count of round trips."""
        count: int = getattr(self.store, "operations", 0)
        return count

    async def stop(self) -> None:
        """Take the store away: every call fails with ``StoreUnavailableError``."""
        if self._down:
            return
        if self.proxy is not None:
            await self.proxy.cut()
        elif self.spec.name == "sqlite":
            await _interrupt_sqlite(self.store, on=True)
        else:
            raise ConfigurationError(f"the {self.spec.name} store cannot be stopped")
        self._down = True

    async def start(self) -> None:
        """Bring the store back after :meth:`stop`."""
        if not self._down:
            return
        if self.proxy is not None:
            await self.proxy.restore()
        elif self.spec.name == "sqlite":
            await _interrupt_sqlite(self.store, on=False)
        self._down = False

    async def close(self) -> None:
        """Delete this run's data and close the store (and the proxy)."""
        try:
            await self.start()
            drop = getattr(self.store, "drop", None)
            if drop is not None and self.spec.name in ("redis", "postgres"):
                await drop()
        finally:
            try:
                await self.store.close()
            finally:
                if self.proxy is not None:
                    await self.proxy.close()
                if self._workdir is not None:
                    shutil.rmtree(self._workdir, ignore_errors=True)


async def _interrupt_sqlite(store: Store, *, on: bool) -> None:
    # Every statement of every later call is interrupted, before any transaction begins.
    await store._set_interrupted(on)  # type: ignore[attr-defined]


def display_url(url: str) -> str:
    """``url`` with its password and any query value that may be secret masked.

    >>> display_url("postgresql://bench:secret@127.0.0.1:5432/db?password=secret")
    'postgresql://bench:***@127.0.0.1:5432/db?password=***'
    """
    return redact_store_url(url)


def _via_proxy(url: str, port: int) -> str:
    """``url`` pointed at ``127.0.0.1:port``, keeping the user, password, path and query."""
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = (userinfo + "@" if userinfo else "") + f"127.0.0.1:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _target(url: str, default_port: int) -> tuple[str, int]:
    parts = urlsplit(url)
    try:
        port = parts.port or default_port
    except ValueError:
        raise ConfigurationError(f"invalid port in {display_url(url)!r}") from None
    host = parts.hostname
    if not host:
        raise ConfigurationError(
            f"the outage case needs a host and port in the URL, got {display_url(url)!r}"
        )
    return host, port


async def open_bench_store(spec: BackendSpec, *, stoppable: bool = False) -> BenchStore:
    """Open a fresh, isolated store for ``spec``; ``stoppable`` routes it through a proxy.

    Raises :class:`~tokenward.stores.StoreUnavailableError` when the server cannot be
    reached and :class:`~tokenward.errors.ConfigurationError` when its client library
    is missing.
    """
    tag = secrets.token_hex(4)
    if spec.name == "memory":
        from tokenward.stores.memory import MemoryStore

        return BenchStore(spec, MemoryStore(), "memory://", "memory")
    if spec.name == "sqlite":
        from tokenward.stores.sqlite import SQLiteStore

        workdir = Path(tempfile.mkdtemp(prefix="tokenward-bench-"))
        path = workdir / "bench.db"
        try:
            opened: Store = await SQLiteStore.open(path)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        return BenchStore(spec, opened, f"sqlite:///{path}", str(path), _workdir=workdir)
    proxy: CuttableProxy | None = None
    url = spec.url or (DEFAULT_REDIS_URL if spec.name == "redis" else DEFAULT_POSTGRES_DSN)
    connect_url = url
    if stoppable:
        from tokenward.testing import CuttableProxy

        host, port = _target(url, 6379 if spec.name == "redis" else 5432)
        proxy = CuttableProxy(host, port)
        await proxy.start()
        connect_url = _via_proxy(url, proxy.port)
    try:
        store = await _open_networked(spec.name, connect_url, tag)
    except BaseException:
        if proxy is not None:
            await proxy.close()
        raise
    namespace = store.prefix if spec.name == "redis" else store.schema  # type: ignore[attr-defined]
    return BenchStore(spec, store, display_url(url), namespace, proxy=proxy)


async def _open_networked(name: str, url: str, tag: str) -> Store:
    try:
        if name == "redis":
            from tokenward.stores.redis import RedisStore

            return await RedisStore.connect(url, prefix=f"tokenward-bench-{tag}")
        from tokenward.stores.postgres import PostgresStore

        return await PostgresStore.connect(url, schema=f"tokenward_bench_{tag}")
    except ImportError as exc:
        extra = "redis" if name == "redis" else "postgres"
        raise ConfigurationError(
            f"the {name} store needs the Python package {exc.name!r}; "
            f"install tokenward with the {extra} extra"
        ) from None
