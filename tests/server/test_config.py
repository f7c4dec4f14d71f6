"""Loading settings: every wrong value is refused at start, naming the setting, where its
value came from and what is wrong (docs/configuration.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.server.conftest import serve
from tokenward.errors import ConfigurationError
from tokenward.server import ClientConfig, Settings, create_app, load_settings
from tokenward.stores import MemoryStore

PLAIN_SECRET = "s3cr3t-plain"
"""A made-up client secret that no error message may echo."""


def refused(env: dict[str, str] | None = None, toml: str | bytes | None = None) -> str:
    """The message of the ConfigurationError that loading these settings raises."""
    path = None
    if toml is not None:
        path = Path("tokenward.toml")
        if isinstance(toml, bytes):
            path.write_bytes(toml)
        else:
            path.write_text(toml)
    with pytest.raises(ConfigurationError) as caught:
        load_settings(path, env=env or {})
    assert type(caught.value) is ConfigurationError
    return caught.value.message


@pytest.fixture(autouse=True)
def _in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)


# -- clients ---------------------------------------------------------------------------


def test_a_plaintext_client_secret_is_refused_naming_the_right_key() -> None:
    message = refused(toml=f'clients = [ {{ id = "billing", secret = "{PLAIN_SECRET}" }} ]')
    assert message == (
        "clients (from config file tokenward.toml): client 1: unknown key 'secret'; "
        "a confidential client takes secret_sha256, the SHA-256 hex digest of its secret"
    )
    assert PLAIN_SECRET not in message


def test_an_unknown_client_key_is_refused_with_a_hint() -> None:
    assert refused(toml='clients = [ { id = "web" }, { id = "x", name = "X" } ]') == (
        "clients (from config file tokenward.toml): client 2: unknown key 'name'"
    )
    assert refused(toml='clients = [ { id = "x", secret_sha265 = "00" } ]').endswith(
        "client 1: unknown key 'secret_sha265'; a confidential client takes secret_sha256, "
        "the SHA-256 hex digest of its secret"
    )
    assert refused(toml='clients = [ { idd = "x" } ]').endswith(
        "client 1: unknown key 'idd' (did you mean 'id'?)"
    )


@pytest.mark.parametrize(
    ("clients", "reason"),
    [
        pytest.param('[ { id = "billing" }, { id = "" } ]', "client id '' is empty", id="empty"),
        pytest.param('[ { id = "a" }, { id = "a" } ]', "client id 'a' is used twice", id="twice"),
        pytest.param('[ { id = "caf\\u00e9" } ]', "client id 'café' is empty", id="non-ascii"),
        pytest.param("[]", "need at least one client", id="none"),
    ],
)
def test_client_ids_must_be_present_printable_and_unique(clients: str, reason: str) -> None:
    message = refused(toml=f"clients = {clients}")
    assert message.startswith(f"clients (from config file tokenward.toml): {reason}")


def test_a_client_secret_digest_must_be_64_hex_digits() -> None:
    spaced = " ".join(["00"] * 21) + "0"  # 64 characters that bytes.fromhex accepts
    assert refused(toml=f'clients = [ {{ id = "x", secret_sha256 = "{spaced}" }} ]') == (
        "clients (from config file tokenward.toml): client 1: secret_sha256 must be 64 hex digits"
    )
    digest = hashlib.sha256(b"x").hexdigest()
    path = Path("tokenward.toml")
    path.write_text(f'clients = [ {{ id = "x", secret_sha256 = "{digest.upper()}" }} ]')
    assert load_settings(path).clients == (ClientConfig("x", digest),)


def test_settings_built_in_code_check_client_ids_too() -> None:
    with pytest.raises(ConfigurationError, match=r"^clients: client id '' is empty"):
        Settings(clients=(ClientConfig(""),))
    with pytest.raises(ConfigurationError, match="secret_sha256 must be 64 lowercase hex"):
        Settings(clients=(ClientConfig("x", "A" * 64),))


# -- numbers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "toml",
    [
        "refresh_lifetime = inf",
        "access_lifetime = nan",
        "idle_timeout = inf",
        "absolute_lifetime = inf",
        "throttle_window = inf",
        "purge_interval = nan",
        "key_rotation_days = nan",
        "key_rotation_days = inf",
        "reuse_grace = nan",
        "leeway = nan",
    ],
)
def test_durations_must_be_finite(toml: str) -> None:
    name = toml.split(maxsplit=1)[0]
    assert (
        refused(toml=toml) == f"{name} (from config file tokenward.toml): must be a finite number"
    )


@pytest.mark.parametrize(
    "value", ["inf", "nan", "-inf", "1e9", "1_0", "\u0661\u0660", " 10", "0x10"]
)
def test_numbers_in_the_environment_are_plain_ascii_decimals(value: str) -> None:
    assert refused({"TOKENWARD_REFRESH_LIFETIME": value}) == (
        f"refresh_lifetime (from environment TOKENWARD_REFRESH_LIFETIME): {value!r} is not a "
        "valid float"
    )


@pytest.mark.parametrize(
    "value", ["\uff18\uff10\uff18\uff11", "80_81", "8081.0", "+8081", "\u00b2"]
)
def test_integers_in_the_environment_are_ascii_digits(value: str) -> None:
    assert refused({"TOKENWARD_PORT": value}) == (
        f"port (from environment TOKENWARD_PORT): {value!r} is not a valid int"
    )


def test_a_huge_number_is_out_of_range_not_a_traceback() -> None:
    assert refused({"TOKENWARD_PORT": "9" * 400}) == (
        "port (from environment TOKENWARD_PORT): must be between 1 and 65535"
    )
    assert refused({"TOKENWARD_LEEWAY": "9" * 400}) == (
        "leeway (from environment TOKENWARD_LEEWAY): must be a finite number"
    )
    assert refused({"TOKENWARD_PORT": "9" * 5000}) == (
        f"port (from environment TOKENWARD_PORT): '{'9' * 36}... is not a valid int"
    )


def test_plain_decimals_in_the_environment_are_taken() -> None:
    settings = load_settings(env={"TOKENWARD_LEEWAY": "2.5", "TOKENWARD_PORT": "8081"})
    assert (settings.leeway, settings.port) == (2.5, 8081)


@pytest.mark.parametrize(
    ("toml", "shown"),
    [
        pytest.param("port = 8000.9", "8000.9", id="port-fraction"),
        pytest.param("argon2_time_cost = 1.9", "1.9", id="argon2-fraction"),
        pytest.param("port = inf", "inf", id="port-inf"),
        pytest.param("port = true", "True", id="port-bool"),
    ],
)
def test_a_toml_float_or_bool_is_not_an_integer_setting(toml: str, shown: str) -> None:
    name = toml.split(maxsplit=1)[0]
    assert refused(toml=toml) == (
        f"{name} (from config file tokenward.toml): {shown} is not a valid int"
    )


def test_purge_interval_zero_names_purge_interval() -> None:
    assert refused(toml="purge_interval = 0") == (
        "purge_interval (from config file tokenward.toml): "
        "must be more than 0 and at most 3155760000 seconds"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        pytest.param(
            {"TOKENWARD_PORT": "0"},
            "port (from environment TOKENWARD_PORT): must be between 1 and 65535",
            id="port",
        ),
        pytest.param(
            {"TOKENWARD_KEY_ROTATION_DAYS": "-1"},
            "key_rotation_days (from environment TOKENWARD_KEY_ROTATION_DAYS): "
            "must be between 0 and 36525 days",
            id="rotation",
        ),
        pytest.param(
            {"TOKENWARD_JWKS_MAX_AGE": "-1"},
            "jwks_max_age (from environment TOKENWARD_JWKS_MAX_AGE): "
            "must be between 0 and 3155760000 seconds",
            id="max-age",
        ),
        pytest.param(
            {"TOKENWARD_LOG_LEVEL": "loud"},
            "log_level (from environment TOKENWARD_LOG_LEVEL): "
            "must be DEBUG, INFO, WARNING or ERROR",
            id="log-level",
        ),
        pytest.param(
            {"TOKENWARD_TRUSTED_PROXIES": "10.0.0.0/8,proxy"},
            "trusted_proxies (from environment TOKENWARD_TRUSTED_PROXIES): "
            "'proxy' is not an IP or CIDR",
            id="proxies",
        ),
        pytest.param(
            {"TOKENWARD_REUSE_GRACE": "61"},
            "reuse_grace (from environment TOKENWARD_REUSE_GRACE): "
            "must be between 0 and 60 seconds",
            id="policy-range",
        ),
        pytest.param(
            {"TOKENWARD_REFRESH_LIFETIME": "60"},
            "access_lifetime (default): must be shorter than refresh_lifetime "
            "(from environment TOKENWARD_REFRESH_LIFETIME)",
            id="policy-pair",
        ),
        pytest.param(
            {"TOKENWARD_THROTTLE_PER_ACCOUNT": "0"},
            "throttle_per_account (from environment TOKENWARD_THROTTLE_PER_ACCOUNT): "
            "must be between 1 and 2147483647",
            id="throttle",
        ),
        pytest.param(
            {"TOKENWARD_ARGON2_MEMORY_COST": "16"},
            "argon2_memory_cost (from environment TOKENWARD_ARGON2_MEMORY_COST): "
            "must be at least 8 KiB per lane: 8 times argon2_parallelism (default)",
            id="argon2-lanes",
        ),
    ],
)
def test_a_value_out_of_range_names_the_setting_and_its_source(
    env: dict[str, str], message: str
) -> None:
    assert refused(env) == message


def test_the_kek_error_names_its_source_and_never_the_value() -> None:
    kek = "not-a-real-kek-but-a-secret"
    message = refused({"TOKENWARD_KEK": kek})
    assert message == (
        "kek (from environment TOKENWARD_KEK): must be 32 random octets, base64url-encoded"
    )
    assert kek not in refused(toml="kek = 12345")


# -- issuer ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("issuer", "reason"),
    [
        pytest.param("http://", "must name a host", id="no-host"),
        pytest.param("https:///path", "must name a host", id="empty-host"),
        pytest.param("ftp://auth.example", "must be an http(s) URL", id="scheme"),
        pytest.param(
            "https://auth.example/?x=1",
            "must have no query or fragment (RFC 8414 sec. 2)",
            id="query",
        ),
        pytest.param(
            "https://auth.example#top",
            "must have no query or fragment (RFC 8414 sec. 2)",
            id="fragment",
        ),
        pytest.param(
            "https://auth.example /x", "must not contain spaces or control characters", id="space"
        ),
        pytest.param("https://u@auth.example", "must not contain user information", id="user"),
        pytest.param("https://auth.example:99999", "is not a valid URL", id="port"),
    ],
)
def test_an_issuer_needs_a_scheme_and_a_host_and_nothing_after_the_path(
    issuer: str, reason: str
) -> None:
    assert refused({"TOKENWARD_ISSUER": issuer}) == (
        f"issuer (from environment TOKENWARD_ISSUER): {reason}"
    )


@pytest.mark.parametrize(
    ("host", "issuer"),
    [
        pytest.param("::1", "http://[::1]:8081", id="ipv6"),
        pytest.param("fe80::1%eth0", "http://[fe80::1%25eth0]:8081", id="zone"),
        pytest.param("127.0.0.1", "http://127.0.0.1:8081", id="ipv4"),
    ],
)
def test_the_default_issuer_brackets_an_ipv6_host(host: str, issuer: str) -> None:
    settings = load_settings(env={}, overrides={"host": host, "port": 8081})
    assert settings.issuer == issuer


async def test_discovery_on_an_ipv6_host_has_well_formed_urls() -> None:
    settings = load_settings(env={}, overrides={"host": "::1", "port": 8081})
    app = create_app(settings, store=MemoryStore())
    async with serve(app) as http:
        meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == "http://[::1]:8081"
    assert meta["token_endpoint"] == "http://[::1]:8081/oauth/token"


def test_a_host_that_makes_no_issuer_is_named() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(env={}, overrides={"host": ""})
    assert caught.value.message == (
        "host (from command line): makes no valid default issuer (must name a host); set issuer"
    )


# -- sources ---------------------------------------------------------------------------


def test_unknown_environment_variables_are_refused_with_a_hint() -> None:
    assert refused({"TOKENWARD_ACESS_LIFETIME": "60"}) == (
        "environment TOKENWARD_ACESS_LIFETIME: not a tokenward setting "
        "(did you mean TOKENWARD_ACCESS_LIFETIME?)"
    )
    assert refused({"TOKENWARD_XYZZY": "1"}) == (
        "environment TOKENWARD_XYZZY: not a tokenward setting"
    )
    assert refused({"TOKENWARD_port": "1"}) == (
        "environment TOKENWARD_port: not a tokenward setting (did you mean TOKENWARD_PORT?)"
    )
    assert refused({"TOKENWARD_CLIENTS": "web"}) == (
        "environment TOKENWARD_CLIENTS: clients can only be set in the config file"
    )


def test_variables_that_are_not_settings_are_left_alone() -> None:
    env = {
        "TOKENWARD_CONFIG": "other.toml",
        "TOKENWARD_REQUIRE_SERVICES": "1",
        "TOKENWARD_VECTORS": "/vectors",
        "TOKENWARD_TEST_REDIS": "redis://127.0.0.1:6379/0",
        "TOKENWARD_BENCH_STORE": "x.db",
        "TOKENWARD_JWKS": "jwks.json",
        "TOKENWARD_TOKEN_URL": "http://localhost/oauth/token",
        "TOKENWARD_PASSWORD": PLAIN_SECRET,
        "OTHER": "x",
    }
    assert load_settings(env=env) == Settings()


def test_top_level_keys_next_to_the_tokenward_table_are_refused() -> None:
    assert refused(toml='port = 9000\n[tokenward]\nstore = "memory://"\n') == (
        "config file tokenward.toml: unknown top-level key 'port' "
        "(settings go in the [tokenward] table)"
    )


def test_an_unknown_setting_in_the_file_gets_a_hint() -> None:
    assert refused(toml="acess_lifetime = 60") == (
        "config file tokenward.toml: unknown setting 'acess_lifetime' "
        "(did you mean 'access_lifetime'?)"
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        pytest.param(
            "tokenward = 1", "config file tokenward.toml: tokenward must be a table", id="table"
        ),
        pytest.param(
            b'store = "caf\xe9"\n', "config file tokenward.toml: line 1 is not UTF-8", id="latin-1"
        ),
    ],
)
def test_a_malformed_file_is_a_configuration_error(toml: str | bytes, message: str) -> None:
    assert refused(toml=toml) == message


def test_the_error_lines_in_the_docs_are_the_loader_s() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"
    documented = [line for line in doc.read_text().splitlines() if line.startswith("error: ")]
    produced = [
        refused({"TOKENWARD_ACCESS_LIFETIME": "soon"}),
        refused(toml="access_lifetime = 5"),
        refused(toml="acess_lifetime = 60"),
        refused({"TOKENWARD_ACESS_LIFETIME": "60"}),
    ]
    assert documented == [f"error: configuration_error: {message}" for message in produced]


def test_the_repr_of_settings_shows_no_store_password_or_kek() -> None:
    settings = Settings(store="postgresql://auth:hunter2@127.0.0.1/auth", kek="A" * 43)
    assert "hunter2" not in repr(settings)
    assert "A" * 43 not in repr(settings)
