"""Store URLs: checked before a client library parses them, and redacted for display.

redis-py and asyncpg parse their URLs lazily and loosely: a port that is not a number
or an unclosed IPv6 bracket raises a bare ``ValueError`` (whose message may quote the
URL, password included), an option the connection class does not take raises
``TypeError`` on the first command, and ``redis://host/abc`` silently means database 0.
:func:`check_store_url` refuses such URLs first, with a
:class:`~tokenward.errors.ConfigurationError` that names what is wrong and never
repeats the URL.

A password can sit in the user information (``redis://:pw@host``) or in the query
(``?password=pw``, ``?sslpassword=pw``, ...); :func:`redact_store_url` masks both, and
every query value but those of a few options known to hold no secret.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qsl, unquote, unquote_plus, urlsplit

from tokenward.errors import ConfigurationError

__all__ = ["check_store_url", "looks_like_scheme", "redact_store_url"]

MASK = "***"

# Query options whose values are shown as they are: none of them can hold a secret (the
# file names of certificates and keys are not secrets; a key's passphrase is). Every
# other value, including those of options unknown here, is masked.
_SHOWN_OPTIONS = frozenset(
    {
        # asyncpg (libpq's names)
        "sslmode",
        "sslrootcert",
        "sslcert",
        "sslcrl",
        "sslnegotiation",
        "ssl_min_protocol_version",
        "ssl_max_protocol_version",
        "target_session_attrs",
        "krbsrvname",
        "gsslib",
        "host",
        "port",
        "dbname",
        "database",
        "user",
        "application_name",
        # redis-py
        "username",
        "client_name",
        "protocol",
        "ssl_cert_reqs",
        "ssl_check_hostname",
        "ssl_ca_certs",
        "ssl_ca_path",
        "ssl_certfile",
    }
)

# The query options a redis:// (or, with TLS, rediss://) store URL may carry. The rest
# of redis-py's options are tokenward's to set: ``retry_on_timeout`` in a URL would make
# the client retry a script that may have run already, and ``db`` would be a second
# way to name the database that the path names.
_REDIS_OPTIONS = ("password", "username", "client_name", "protocol")
_REDIS_TLS_OPTIONS = (
    "ssl_cert_reqs",
    "ssl_check_hostname",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
)
# Options with a closed set of values, which the client would refuse only when
# connecting (asyncpg's refusal would read as a store failure, exit status 3).
_REDIS_CHOICES = {"protocol": ("2", "3"), "ssl_cert_reqs": ("none", "optional", "required")}
_POSTGRES_CHOICES = {
    "sslmode": ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
}

_PORT = re.compile(r"[0-9]{1,5}")
_IPV6_HOST = re.compile(r"\[[^\]]+\](?::(.*))?", re.DOTALL)
_REDIS_DB = re.compile(r"/?|/[0-9]{1,10}")


def redact_store_url(url: str) -> str:
    """``url`` fit to print or log: its password, and every query value that may be
    secret, replaced with ``***``.

    >>> redact_store_url("postgresql://auth:pw@db:5432/auth?sslmode=verify-full&sslpassword=pw")
    'postgresql://auth:***@db:5432/auth?sslmode=verify-full&sslpassword=***'
    """
    scheme, sep, _ = url.partition("://")
    whole = f"{scheme}://{MASK}" if looks_like_scheme(scheme) else MASK
    try:
        parts = urlsplit(url)
    except ValueError:
        return whole  # an unclosed IPv6 bracket: nothing of it can be shown safely
    if not sep or ("@" in url and "@" not in parts.netloc):
        # A "/", "?" or "#" in a password that was not percent-encoded ends the host
        # part early, leaving the password split around it.
        return whole
    # The last "@" ends the user information (urlsplit) but asyncpg splits at the
    # first: masking everything before the last one covers both readings.
    userinfo, at, hosts = parts.netloc.rpartition("@")
    if at and ":" in userinfo:
        userinfo = userinfo.partition(":")[0] + ":" + MASK
    shown = f"{scheme}://{userinfo}{at}{hosts}{parts.path}"
    if parts.query:
        shown += "?" + "&".join(_redact_option(option) for option in parts.query.split("&"))
    # A fragment is no option of any client: it can only be a password's tail after an
    # unescaped "#".
    return shown + f"#{MASK}" if parts.fragment else shown


def _redact_option(option: str) -> str:
    name, equals, _ = option.partition("=")
    if not equals:
        return MASK if option else option
    if unquote_plus(name).lower() in _SHOWN_OPTIONS:
        return option
    return f"{name}={MASK}"


def looks_like_scheme(text: str) -> bool:
    """Whether ``text`` (what comes before ``://``) is a URL scheme, safe to repeat.

    >>> looks_like_scheme("ftp"), looks_like_scheme("user:secret@host")
    (True, False)
    """
    return re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]{0,31}", text) is not None


def check_store_url(url: str) -> None:
    """Refuse a ``redis://``, ``rediss://`` or ``postgresql://`` URL its client would
    fail on with a traceback, or read otherwise than it looks.

    Other schemes are left to their store. Messages never quote the URL.

    >>> check_store_url("redis://127.0.0.1:6379/abc")
    Traceback (most recent call last):
    ...
    tokenward.errors.ConfigurationError: redis store URL: the database must be a number, as in redis://host:6379/0
    """
    scheme = url.partition("://")[0]
    if scheme in ("redis", "rediss"):
        _check_redis(url, tls=scheme == "rediss")
    elif scheme in ("postgresql", "postgres"):
        _check_postgres(url)


def _split(url: str, what: str) -> SplitResult:
    try:
        return urlsplit(url)
    except ValueError:
        raise ConfigurationError(
            f"{what} store URL is malformed: write an IPv6 address as [address]"
        ) from None


def _options(query: str, what: str) -> dict[str, str]:
    try:
        pairs = parse_qsl(query, keep_blank_values=True, strict_parsing=True) if query else []
    except ValueError:
        raise ConfigurationError(
            f"{what} store URL: options must be name=value pairs joined by &"
        ) from None
    options = dict(pairs)
    if len(options) != len(pairs):
        # redis-py reads the first of two values, asyncpg the last.
        raise ConfigurationError(f"{what} store URL gives an option twice")
    return options


def _check_port(text: str, what: str) -> None:
    if _PORT.fullmatch(text) is None or not 0 < int(text) < 65536:
        raise ConfigurationError(
            f"{what} store URL has an invalid port: use a number from 1 to 65535"
        )


def _check_choice(name: str, value: str, what: str, table: Mapping[str, tuple[str, ...]]) -> None:
    choices = table.get(name)
    if choices is not None and value not in choices:
        raise ConfigurationError(
            f"{what} store URL: the option {name!r} must be one of {', '.join(choices)}"
        )


def _check_redis(url: str, *, tls: bool) -> None:
    parts = _split(url, "redis")
    port = parts.netloc.rpartition("@")[2].rpartition("]")[2].partition(":")[2]
    if port:
        _check_port(port, "redis")
    if _REDIS_DB.fullmatch(parts.path) is None:
        raise ConfigurationError(
            "redis store URL: the database must be a number, as in redis://host:6379/0"
        )
    allowed = _REDIS_OPTIONS + _REDIS_TLS_OPTIONS if tls else _REDIS_OPTIONS
    for name, value in _options(parts.query, "redis").items():
        if name in _REDIS_TLS_OPTIONS and not tls:
            raise ConfigurationError(
                f"redis store URL: the option {name!r} needs TLS: use rediss://"
            )
        if name not in allowed:
            # The name is not repeated: it may be a password pasted in the wrong place.
            raise ConfigurationError(
                f"redis store URL has an option tokenward does not take "
                f"(it takes {', '.join(allowed)})"
            )
        _check_choice(name, value, "redis", _REDIS_CHOICES)


def _check_postgres(url: str) -> None:
    parts = _split(url, "postgresql")
    # asyncpg ends the user information at the first "@" (a password's own "@" must be
    # written %40) and reads a comma-separated host list after it.
    hosts = parts.netloc.partition("@")[2] if "@" in parts.netloc else parts.netloc
    if hosts:
        _check_hosts(hosts, unescape=True)
    options = _options(parts.query, "postgresql")
    for name, value in options.items():
        _check_choice(name, value, "postgresql", _POSTGRES_CHOICES)
    if "host" in options:
        _check_hosts(options["host"], unescape=False)
    if "port" in options:
        for port in options["port"].split(","):
            _check_port(port, "postgresql")


def _check_hosts(hosts: str, *, unescape: bool) -> None:
    for host in hosts.split(","):
        if not host:
            raise ConfigurationError("postgresql store URL has an empty host in its host list")
        if host.startswith("/"):
            continue  # a Unix socket directory
        if host.startswith("["):
            match = _IPV6_HOST.fullmatch(host)
            if match is None:
                raise ConfigurationError(
                    "postgresql store URL: write an IPv6 host as [address] or [address]:port"
                )
            port = match[1] or ""
        else:
            port = host.partition(":")[2]
        if port:
            _check_port(unquote(port) if unescape else port, "postgresql")
