"""Store URLs: ``open_store`` refuses malformed ones in one clear error, and
``redact_store_url`` masks every secret a URL can carry.

The refusals happen before any connection is attempted, so no server is needed: the
ports below are never dialled.
"""

from __future__ import annotations

import pytest

from tokenward.errors import ConfigurationError
from tokenward.stores import open_store, redact_store_url
from tokenward.stores._url import check_store_url

SECRET = "hunter2"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param(
            f"postgresql://u:{SECRET}@127.0.0.1:abc/test",
            "postgresql store URL has an invalid port: use a number from 1 to 65535",
            id="postgres-port-not-a-number",
        ),
        pytest.param(
            f"postgresql://u:{SECRET}@127.0.0.1:99999/test",
            "postgresql store URL has an invalid port: use a number from 1 to 65535",
            id="postgres-port-out-of-range",
        ),
        pytest.param(
            f"postgresql://u:{SECRET}@h1:5432,h2:x/test",
            "postgresql store URL has an invalid port: use a number from 1 to 65535",
            id="postgres-host-list-port",
        ),
        pytest.param(
            f"postgresql://u:{SECRET}@h1,/test",
            "postgresql store URL has an empty host in its host list",
            id="postgres-empty-host",
        ),
        pytest.param(
            f"postgresql://u:{SECRET}@[::1",
            "postgresql store URL is malformed: write an IPv6 address as [address]",
            id="postgres-unclosed-ipv6",
        ),
        pytest.param(
            f"postgresql://u@127.0.0.1/test?password={SECRET}&port=x",
            "postgresql store URL has an invalid port: use a number from 1 to 65535",
            id="postgres-query-port",
        ),
        pytest.param(
            f"postgresql://u@127.0.0.1/test?password={SECRET}&password=other",
            "postgresql store URL gives an option twice",
            id="postgres-option-twice",
        ),
        pytest.param(
            f"postgresql://u@127.0.0.1/test?{SECRET}",
            "postgresql store URL: options must be name=value pairs joined by &",
            id="postgres-bare-query",
        ),
        pytest.param(
            f"postgresql://u:{SECRET}@127.0.0.1/test?sslmode=bogus",
            "postgresql store URL: the option 'sslmode' must be one of disable, allow, "
            "prefer, require, verify-ca, verify-full",
            id="postgres-sslmode",
        ),
        pytest.param(
            f"redis://:{SECRET}@127.0.0.1:abc/0",
            "redis store URL has an invalid port: use a number from 1 to 65535",
            id="redis-port",
        ),
        pytest.param(
            f"redis://:{SECRET}@[::1/0",
            "redis store URL is malformed: write an IPv6 address as [address]",
            id="redis-unclosed-ipv6",
        ),
        pytest.param(
            f"redis://:{SECRET}@127.0.0.1:6379/abc",
            "redis store URL: the database must be a number, as in redis://host:6379/0",
            id="redis-db-not-a-number",
        ),
        pytest.param(
            "redis://127.0.0.1:6379/0/1",
            "redis store URL: the database must be a number, as in redis://host:6379/0",
            id="redis-db-two-segments",
        ),
        pytest.param(
            f"redis://127.0.0.1:1/0?password={SECRET}&ssl_cert_reqs=none",
            "redis store URL: the option 'ssl_cert_reqs' needs TLS: use rediss://",
            id="redis-tls-option-without-tls",
        ),
        pytest.param(
            f"rediss://127.0.0.1:1/0?password={SECRET}&ssl_cert_reqs=bogus",
            "redis store URL: the option 'ssl_cert_reqs' must be one of none, optional, required",
            id="rediss-bad-cert-reqs",
        ),
        pytest.param(
            f"redis://127.0.0.1:1/0?{SECRET}=x",
            "redis store URL has an option tokenward does not take "
            "(it takes password, username, client_name, protocol)",
            id="redis-unknown-option",
        ),
        pytest.param(
            "redis://127.0.0.1:1/0?retry_on_timeout=true",
            "redis store URL has an option tokenward does not take "
            "(it takes password, username, client_name, protocol)",
            id="redis-retry-option",
        ),
        pytest.param(
            "redis://127.0.0.1:1/?db=1",
            "redis store URL has an option tokenward does not take "
            "(it takes password, username, client_name, protocol)",
            id="redis-db-in-query",
        ),
        pytest.param(
            f"postgresql:/u:{SECRET}@127.0.0.1/test",
            "store URL must look like scheme://..., e.g. sqlite:///tokenward.db",
            id="no-scheme-separator",
        ),
        pytest.param(
            f"u:{SECRET}@host://x",
            "unsupported store scheme: use sqlite, redis, redis+cluster, postgresql or memory",
            id="scheme-not-repeated-unless-a-scheme",
        ),
    ],
)
async def test_open_store_refuses_a_malformed_url_without_repeating_it(
    url: str, message: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        await open_store(url)
    assert caught.value.message == message
    assert SECRET not in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://auth@127.0.0.1:5432/auth",
        "postgresql://auth@h1:5432,h2:5433,[::1]:5434/auth",
        "postgresql:///auth?host=/run/postgresql&port=5432",
        "postgresql://auth@127.0.0.1/auth?sslmode=verify-full&sslpassword=x&application_name=tw",
        "postgres://auth:p%40ss@[::1]/auth",
        "redis://127.0.0.1:6379/0",
        "redis://127.0.0.1:6379",
        "redis://127.0.0.1/",
        "redis://[::1]:6379/15?password=x&client_name=tw&protocol=3",
        "rediss://:pw@cache:6380/0?ssl_cert_reqs=required&ssl_ca_certs=/etc/ca.pem",
        "redis+cluster://127.0.0.1:7000,127.0.0.1:7001",
        "sqlite:///tokenward.db",
        "memory://",
    ],
)
def test_check_store_url_accepts_what_the_clients_read_as_written(url: str) -> None:
    check_store_url(url)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        pytest.param(
            f"postgresql://postgres@127.0.0.1:5432/test?password={SECRET}",
            "postgresql://postgres@127.0.0.1:5432/test?password=***",
            id="postgres-query-password",
        ),
        pytest.param(
            f"redis://127.0.0.1:6379/0?password={SECRET}",
            "redis://127.0.0.1:6379/0?password=***",
            id="redis-query-password",
        ),
        pytest.param(
            f"postgresql://auth:{SECRET}@db/auth?sslmode=require&sslpassword={SECRET}",
            "postgresql://auth:***@db/auth?sslmode=require&sslpassword=***",
            id="userinfo-and-sslpassword",
        ),
        pytest.param(
            f"rediss://:{SECRET}@cache/0?ssl_cert_reqs=none&ssl_password={SECRET}",
            "rediss://:***@cache/0?ssl_cert_reqs=none&ssl_password=***",
            id="redis-ssl-password",
        ),
        pytest.param(
            f"postgresql://db/auth?Password={SECRET}&pass%77ord={SECRET}&api_token={SECRET}",
            "postgresql://db/auth?Password=***&pass%77ord=***&api_token=***",
            id="any-case-escaped-or-unknown-name",
        ),
        pytest.param(
            f"postgresql://db/auth?{SECRET}&sslkey=/k.pem",
            "postgresql://db/auth?***&sslkey=***",
            id="bare-word-and-key-file",
        ),
        pytest.param(
            f"postgresql://auth:p@{SECRET}@db/auth",
            "postgresql://auth:***@db/auth",
            id="unescaped-at-in-password",
        ),
        pytest.param(f"redis://:pa#{SECRET}@cache/0", "redis://***", id="unescaped-hash"),
        pytest.param(f"redis://:pa/{SECRET}@cache/0", "redis://***", id="unescaped-slash"),
        pytest.param(f"redis://cache/0#{SECRET}", "redis://cache/0#***", id="fragment"),
        pytest.param(f"postgresql://u:{SECRET}@[::1", "postgresql://***", id="malformed"),
        pytest.param(f"u:{SECRET}@host", "***", id="no-scheme"),
        pytest.param(
            "postgresql://auth@127.0.0.1:5432/auth",
            "postgresql://auth@127.0.0.1:5432/auth",
            id="nothing-to-mask",
        ),
        pytest.param("memory://", "memory://", id="memory"),
    ],
)
def test_redact_store_url_masks_every_secret(url: str, shown: str) -> None:
    assert redact_store_url(url) == shown
