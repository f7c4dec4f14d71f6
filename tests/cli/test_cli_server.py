"""What the server-side commands share: settings, exit statuses, help, and ``serve``'s errors.

The commands run in-process; ``serve`` is only run here up to the point where it would
listen (a running server is tests/server/test_cli_e2e.py's business).
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tokenward.cli import _serve
from tokenward.cli._runtime import display_store_url
from tokenward.cli._serve import add_user_command
from tokenward.server import Settings

from .server_support import PASSWORD, isolate_environment, login, ok, refresh, sqlite_url
from .support import CLI, Result

UNREACHABLE = "redis://127.0.0.1:1/0"
"""A store URL on a loopback port nothing listens on: connections are refused at once."""

COMMANDS = [
    ("serve",),
    ("users", "add"),
    ("users", "list"),
    ("users", "disable"),
    ("users", "enable"),
    ("users", "set-password"),
    ("sessions", "list"),
    ("sessions", "revoke"),
    ("keys", "rotate"),
    ("keys", "list"),
]


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_environment(monkeypatch)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, where the default store (tokenward.db) would go."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


# -- help -----------------------------------------------------------------------------


@pytest.mark.parametrize("command", COMMANDS, ids=[" ".join(c) for c in COMMANDS])
def test_every_server_command_has_help_with_examples(cli: CLI, command: tuple[str, ...]) -> None:
    result = cli(*command, "--help")
    name = " ".join(command)
    assert result.status == 0, result.err
    assert f"usage: tokenward {name}" in result.out
    assert f"examples:\n  tokenward {name}" in result.out
    assert "--store URL" in result.out
    assert "--config FILE" in result.out


def test_top_level_help_lists_the_server_groups_and_status_3(cli: CLI) -> None:
    result = cli("--help")
    for group in ("serve", "users", "sessions", "keys", "token"):
        assert f"\n    {group} " in result.out
    assert "3 store unavailable" in result.out


def test_the_token_commands_start_without_the_server_stack() -> None:
    probe = (
        "import sys\n"
        "from tokenward.cli._main import build_parser\n"
        "build_parser()\n"
        "heavy = ('asyncio', 'tokenward.stores', 'tokenward.service', 'tokenward.server',"
        " 'uvicorn', 'starlette')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
    )
    result = subprocess.run(  # noqa: S603 - a fixed interpreter and script
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout == "[]\n"


# -- settings -------------------------------------------------------------------------


def test_the_default_store_is_tokenward_db_in_the_working_directory(
    cli: CLI, workdir: Path
) -> None:
    ok(cli("users", "add", "ada", "--password-stdin", stdin=PASSWORD))
    assert (workdir / "tokenward.db").is_file()
    assert login(f"sqlite:///{workdir / 'tokenward.db'}", "ada").sid


def test_the_store_can_come_from_a_config_file(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = sqlite_url(tmp_path)
    config = tmp_path / "tokenward.toml"
    config.write_text(f'[tokenward]\nstore = "{url}"\n')
    result = cli("users", "add", "ada", "--password-stdin", "--config", str(config), stdin=PASSWORD)
    assert result.status == 0, result.err
    monkeypatch.setenv("TOKENWARD_CONFIG", str(config))
    (user,) = cli("users", "list", "--json").json()
    assert user["username"] == "ada"


def test_the_store_option_overrides_environment_and_config(
    cli: CLI, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "tokenward.toml"
    config.write_text(f'store = "{UNREACHABLE}"\n')
    monkeypatch.setenv("TOKENWARD_CONFIG", str(config))
    monkeypatch.setenv("TOKENWARD_STORE", UNREACHABLE)
    result = cli("users", "list", "--json", "--store", sqlite_url(tmp_path))
    assert (result.status, result.json()) == (0, [])


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        pytest.param(
            {"TOKENWARD_PORT": "eighty"},
            "error: configuration_error: port (from environment TOKENWARD_PORT): "
            "'eighty' is not a valid int",
            id="bad-env",
        ),
        pytest.param(
            {"TOKENWARD_ALGORITHM": "none"},
            "error: configuration_error: algorithm (from environment TOKENWARD_ALGORITHM): "
            "'none' is not supported",
            id="alg-none",
        ),
        pytest.param(
            {"TOKENWARD_STORE": "ftp://example"},
            "error: configuration_error: unsupported store scheme 'ftp': "
            "use sqlite, redis, redis+cluster, postgresql or memory",
            id="bad-scheme",
        ),
        pytest.param(
            {"TOKENWARD_KEK": "too-short"},
            "error: configuration_error: kek (from environment TOKENWARD_KEK): "
            "must be 32 random octets, base64url-encoded",
            id="bad-kek",
        ),
    ],
)
def test_a_bad_setting_exits_2_naming_it(
    cli: CLI, workdir: Path, monkeypatch: pytest.MonkeyPatch, setup: dict[str, str], message: str
) -> None:
    for name, value in setup.items():
        monkeypatch.setenv(name, value)
    for command in (("users", "list"), ("sessions", "list"), ("keys", "list"), ("serve",)):
        result = cli(*command)
        assert result.status == 2, command
        assert result.error_line() == message
    assert not (workdir / "tokenward.db").exists()


def test_a_bad_config_file_exits_2(cli: CLI, tmp_path: Path) -> None:
    unknown = tmp_path / "unknown.toml"
    unknown.write_text('stor = "sqlite:///x.db"\n')
    result = cli("keys", "list", "--config", str(unknown))
    assert result.status == 2
    assert result.error_line() == (
        f"error: configuration_error: config file {unknown}: unknown setting 'stor' "
        "(did you mean 'store'?)"
    )
    missing = cli("keys", "list", "--config", str(tmp_path / "missing.toml"))
    assert missing.status == 2
    assert "No such file or directory" in missing.error_line()


@pytest.mark.parametrize(
    "command",
    [
        ("users", "list"),
        ("users", "disable", "ada"),
        ("sessions", "list"),
        ("sessions", "revoke", "--all"),
        ("keys", "list"),
        ("keys", "rotate"),
    ],
    ids=" ".join,
)
def test_the_memory_store_is_refused_by_store_commands(cli: CLI, command: tuple[str, ...]) -> None:
    result = cli(*command, "--store", "memory://")
    assert result.status == 2
    assert "the memory:// store keeps nothing between processes" in result.error_line()


@pytest.mark.parametrize(
    "command",
    [
        ("users", "add", "ada", "--password-stdin"),
        ("users", "list"),
        ("users", "set-password", "ada", "--password-stdin"),
        ("sessions", "list"),
        ("sessions", "revoke", "--all"),
        ("keys", "list"),
        ("keys", "rotate"),
        ("serve", "--port", "8000"),
    ],
    ids=" ".join,
)
def test_an_unavailable_store_exits_3(cli: CLI, command: tuple[str, ...]) -> None:
    result = cli(*command, "--store", UNREACHABLE, stdin=PASSWORD)
    assert result.status == 3
    assert result.error_line() == "error: store_unavailable: redis is unreachable or timed out"


def test_an_unopenable_sqlite_file_exits_3(cli: CLI, tmp_path: Path) -> None:
    result = cli("users", "list", "--store", f"sqlite:///{tmp_path / 'missing' / 'dir' / 'a.db'}")
    assert result.status == 3
    assert result.error_line().startswith("error: store_unavailable: ")


# -- serve, up to listening ------------------------------------------------------------


def test_serve_refuses_a_bad_port(cli: CLI, workdir: Path) -> None:
    result = cli("serve", "--port", "70000")
    assert result.status == 2
    assert result.error_line() == (
        "error: configuration_error: port (from command line): must be between 1 and 65535"
    )


def test_serve_on_a_port_in_use_exits_2_after_creating_the_keys(cli: CLI, tmp_path: Path) -> None:
    store = sqlite_url(tmp_path)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = cli("serve", "--port", str(port), "--store", store)
    assert result.status == 2
    assert result.error_line() == (
        f"error: configuration_error: cannot listen on http://127.0.0.1:{port}: "
        "Address already in use"
    )
    # The first start got as far as the key ring: the server's signing key exists.
    (key,) = cli("keys", "list", "--json", "--store", store).json()
    assert key["state"] == "current"


def test_add_user_command_names_the_store_and_config_and_masks_passwords(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    default = add_user_command(Settings(), None)
    assert default == f"tokenward users add NAME --store sqlite:///{tmp_path / 'tokenward.db'}"
    redis = add_user_command(Settings(store="redis://:hunter2@127.0.0.1:6379/0"), "auth.toml")
    assert redis == (
        f"tokenward users add NAME --config {tmp_path / 'auth.toml'} "
        "--store 'redis://:***@127.0.0.1:6379/0'"
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://auth:pw@127.0.0.1:5432/auth", "postgresql://auth:***@127.0.0.1:5432/auth"),
        ("postgresql://auth@127.0.0.1/auth", "postgresql://auth@127.0.0.1/auth"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
        ("sqlite:////var/lib/auth.db", "sqlite:////var/lib/auth.db"),
        ("memory://", "memory://"),
        (
            "postgresql://postgres@127.0.0.1:5432/test?password=hunter2",
            "postgresql://postgres@127.0.0.1:5432/test?password=***",
        ),
        ("redis://127.0.0.1:6379/0?password=hunter2", "redis://127.0.0.1:6379/0?password=***"),
        (
            "postgresql://auth@db/auth?sslmode=require&sslpassword=hunter2&api_key=hunter2",
            "postgresql://auth@db/auth?sslmode=require&sslpassword=***&api_key=***",
        ),
    ],
)
def test_display_store_url(url: str, shown: str) -> None:
    assert display_store_url(url) == shown


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            "postgresql://u:hunter2@127.0.0.1:abc/test",
            "postgresql store URL has an invalid port: use a number from 1 to 65535",
            id="port-not-a-number",
        ),
        pytest.param(
            "postgresql://u:hunter2@[::1",
            "postgresql store URL is malformed: write an IPv6 address as [address]",
            id="unclosed-ipv6",
        ),
        pytest.param(
            "redis://:hunter2@127.0.0.1:1/0?ssl_cert_reqs=bogus",
            "redis store URL: the option 'ssl_cert_reqs' needs TLS: use rediss://",
            id="option-the-client-does-not-take",
        ),
        pytest.param(
            "redis://:hunter2@127.0.0.1:1/abc",
            "redis store URL: the database must be a number, as in redis://host:6379/0",
            id="database-not-a-number",
        ),
    ],
)
@pytest.mark.parametrize("command", [("users", "list"), ("serve", "--port", "8000")], ids=" ".join)
def test_a_malformed_store_url_exits_2_without_repeating_its_password(
    cli: CLI, workdir: Path, command: tuple[str, ...], url: str, message: str
) -> None:
    result = cli(*command, "--store", url)
    assert result.status == 2
    assert result.error_line() == f"error: configuration_error: {message}"
    assert "hunter2" not in result.err + result.out


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


class _ServerThatStopsAtOnce:
    """Stands in for uvicorn: ``serve`` prints its banner, then this "serves" nothing."""

    started = True
    should_exit = False

    def run(self, sockets: list[socket.socket]) -> None:
        del sockets


@pytest.mark.services
def test_serve_banner_masks_a_password_in_the_store_url_query(
    cli: CLI, postgres_store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # PostgreSQL trusts loopback connections here, so the password is accepted unused.
    monkeypatch.setattr(_serve, "_server", lambda settings: _ServerThatStopsAtOnce())
    store = f"{postgres_store}?password=hunter2"
    result = cli("serve", "--port", str(_free_port()), "--store", store)
    assert result.status == 0, result.err
    shown = f"{postgres_store}?password=***"
    assert f"(store {shown})" in result.err
    assert f"add a user with: tokenward users add NAME --store '{shown}'" in result.err
    assert "hunter2" not in result.err + result.out


# -- other backends -------------------------------------------------------------------


@pytest.fixture
def postgres_store(postgres_dsn: str) -> Iterator[str]:
    """A PostgreSQL database of its own, so the commands' default schema is isolated."""
    import asyncpg  # type: ignore[import-untyped]  # asyncpg ships no type information

    name = "tw_cli_" + uuid.uuid4().hex[:12]

    async def execute(sql: str) -> None:
        connection = await asyncpg.connect(postgres_dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()

    asyncio.run(execute(f'CREATE DATABASE "{name}"'))
    try:
        yield postgres_dsn.rsplit("/", 1)[0] + "/" + name
    finally:
        asyncio.run(execute(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[str]:
    """Redis database 7 under the default prefix, emptied before and after."""
    from tokenward.stores.redis import RedisStore

    url = redis_url.rsplit("/", 1)[0] + "/7"

    async def drop() -> None:
        store = await RedisStore.connect(url)
        await store.drop()
        await store.close()

    asyncio.run(drop())
    try:
        yield url
    finally:
        asyncio.run(drop())


@pytest.mark.services
@pytest.mark.parametrize("backend", ["postgres_store", "redis_store"])
def test_users_sessions_and_keys_on_a_shared_store(
    cli: CLI, request: pytest.FixtureRequest, backend: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url: str = request.getfixturevalue(backend)
    monkeypatch.setenv("TOKENWARD_STORE", url)

    def ok(*argv: str, stdin: str | None = None) -> Result:
        result = cli(*argv, stdin=stdin)
        assert result.status == 0, result.err
        return result

    ok("users", "add", "ada", "--password-stdin", stdin=PASSWORD)
    pairs = [login(url, "ada"), login(url, "ada")]
    (listed,) = ok("users", "list", "--json").json()
    assert listed["username"] == "ada"
    sessions = ok("sessions", "list", "--json").json()
    assert sorted(s["sid"] for s in sessions) == sorted(p.sid for p in pairs)
    ok("sessions", "revoke", pairs[0].sid)
    assert refresh(url, pairs[1].refresh_token).sid == pairs[1].sid
    result = ok("users", "set-password", "ada", "--password-stdin", stdin="a new long password")
    assert result.out == "changed the password of 'ada'; revoked 1 session\n"
    ok("keys", "rotate")
    assert {k["state"] for k in ok("keys", "list", "--json").json()} == {"current", "retired"}
