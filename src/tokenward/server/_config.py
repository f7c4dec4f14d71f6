"""Server settings and their validation (``_config_load`` reads them from their sources).

Every value is validated when the settings are built: a :class:`SettingError` names the
setting that is wrong and why, and the server does not start.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import math
import re
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from tokenward.errors import ConfigurationError
from tokenward.jose import ALGORITHMS
from tokenward.service import (
    Argon2Parameters,
    Clock,
    PasswordHasher,
    ThrottlePolicy,
    TokenPolicy,
    TokenService,
    UserService,
)
from tokenward.stores import Store

__all__ = ["ClientConfig", "Services", "SettingError", "Settings", "http_url", "open_services"]

_HEX64_LOWER = re.compile(r"[0-9a-f]{64}")
_VSCHAR = re.compile(r"[\x20-\x7e]+")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_POLICY_FIELDS = (
    "issuer",
    "audience",
    "access_lifetime",
    "refresh_lifetime",
    "idle_timeout",
    "absolute_lifetime",
    "reuse_grace",
    "leeway",
    "algorithm",
)

# Durations are capped at 100 years: larger values overflow timers and 64-bit timestamps.
_YEARS_100 = 36525


class _Range(NamedTuple):
    low: int
    high: int
    low_open: bool  # low itself is refused: a duration of 0 has no meaning
    unit: str


_SECONDS = _Range(0, _YEARS_100 * 86400, low_open=True, unit=" seconds")
_RANGES = {
    "port": _Range(1, 65535, low_open=False, unit=""),
    "access_lifetime": _SECONDS,
    "refresh_lifetime": _SECONDS,
    "idle_timeout": _SECONDS,
    "absolute_lifetime": _SECONDS,
    "throttle_window": _SECONDS,
    "throttle_per_account": _Range(1, 2**31 - 1, low_open=False, unit=""),
    "throttle_per_address": _Range(1, 2**31 - 1, low_open=False, unit=""),
    # RFC 9106 sec. 3.1: time and memory costs are 32-bit numbers; Argon2Parameters
    # allows 1-64 lanes.
    "argon2_time_cost": _Range(1, 2**32 - 1, low_open=False, unit=""),
    "argon2_memory_cost": _Range(8, 2**32 - 1, low_open=False, unit=" KiB"),
    "argon2_parallelism": _Range(1, 64, low_open=False, unit=""),
    "key_rotation_days": _Range(0, _YEARS_100, low_open=False, unit=" days"),  # 0: off
    "jwks_max_age": _Range(0, _YEARS_100 * 86400, low_open=False, unit=" seconds"),
    "purge_interval": _SECONDS,
}


class SettingError(ConfigurationError):
    """One setting is wrong: ``setting`` and why. ``reason`` may name other settings
    (``mentions``); :func:`load_settings` adds where each of them came from."""

    def __init__(self, setting: str, reason: str, *, mentions: tuple[str, ...] = ()) -> None:
        super().__init__(f"{setting}: {reason}")
        self.setting = setting
        self.reason = reason
        self.mentions = mentions


@dataclass(frozen=True, slots=True)
class ClientConfig:
    """An OAuth client. Confidential clients authenticate with HTTP Basic; the secret is
    configured as its SHA-256 hex digest (client secrets are random, not passwords)."""

    client_id: str
    secret_sha256: str | None = None

    @property
    def confidential(self) -> bool:
        """True when the client must authenticate."""
        return self.secret_sha256 is not None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything ``tokenward serve`` can be told. See ``docs/configuration.md``."""

    host: str = "127.0.0.1"
    port: int = 8000
    store: str = field(default="sqlite:///tokenward.db", repr=False)  # may hold a password
    issuer: str = ""
    audience: str = "api"
    algorithm: str = "ES256"
    access_lifetime: float = 900.0
    refresh_lifetime: float = 14 * 86400.0
    idle_timeout: float = 14 * 86400.0
    absolute_lifetime: float = 30 * 86400.0
    reuse_grace: float = 10.0
    leeway: float = 0.0
    kek: str | None = field(default=None, repr=False)
    registration: bool = False
    cookie_secure: bool = True
    cookie_path_prefix: str = ""
    clients: tuple[ClientConfig, ...] = (ClientConfig("default"),)
    throttle_window: float = 900.0
    throttle_per_account: int = 5
    throttle_per_address: int = 50
    argon2_time_cost: int = 3
    argon2_memory_cost: int = 64 * 1024
    argon2_parallelism: int = 4
    trusted_proxies: tuple[str, ...] = ()
    key_rotation_days: float = 0.0
    jwks_max_age: int = 300
    purge_interval: float = 300.0
    log_level: str = "INFO"

    def __post_init__(self) -> None:
        _check_numbers(self)
        if not self.issuer:
            issuer = http_url(self.host, self.port)
            problem = _issuer_problem(issuer)
            if problem:
                raise SettingError("host", f"makes no valid default issuer ({problem}); set issuer")
            object.__setattr__(self, "issuer", issuer)
        problem = _issuer_problem(self.issuer)
        if problem:
            raise SettingError("issuer", problem)
        if self.algorithm not in ALGORITHMS:
            raise SettingError("algorithm", f"{self.algorithm!r} is not supported")
        if not isinstance(self.log_level, str) or self.log_level.upper() not in _LOG_LEVELS:
            raise SettingError("log_level", "must be DEBUG, INFO, WARNING or ERROR")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise SettingError("trusted_proxies", f"{proxy!r} is not an IP or CIDR") from None
        _check_clients(self.clients)
        if self.argon2_memory_cost < 8 * self.argon2_parallelism:
            raise SettingError(
                "argon2_memory_cost",
                "must be at least 8 KiB per lane: 8 times argon2_parallelism",
                mentions=("argon2_parallelism",),
            )
        self.kek_bytes()
        self.token_policy()
        self.argon2()
        self.throttle()

    def kek_bytes(self) -> bytes | None:
        """The key-encryption key (32 octets, base64url in the setting), or None."""
        if self.kek is None:
            return None
        try:
            raw = base64.urlsafe_b64decode(self.kek + "=" * (-len(self.kek) % 4))
        except (binascii.Error, ValueError):
            raw = b""
        if len(raw) != 32:
            raise SettingError("kek", "must be 32 random octets, base64url-encoded")
        return raw

    def token_policy(self) -> TokenPolicy:
        """The token service policy these settings describe."""
        try:
            return TokenPolicy(
                issuer=self.issuer,
                audience=self.audience,
                access_lifetime=self.access_lifetime,
                refresh_lifetime=self.refresh_lifetime,
                idle_timeout=self.idle_timeout,
                absolute_lifetime=self.absolute_lifetime,
                reuse_grace=self.reuse_grace,
                leeway=self.leeway,
                algorithm=self.algorithm,
            )
        except ConfigurationError as exc:
            # TokenPolicy's messages start with the name of the field that is wrong.
            name, _, reason = exc.message.partition(" ")
            if name not in _POLICY_FIELDS:
                raise ConfigurationError(f"token policy: {exc.message}") from None
            others = tuple(other for other in _POLICY_FIELDS if re.search(rf"\b{other}\b", reason))
            raise SettingError(name, reason, mentions=others) from None

    def argon2(self) -> Argon2Parameters:
        """argon2id parameters for password hashing."""
        return Argon2Parameters(
            self.argon2_time_cost, self.argon2_memory_cost, self.argon2_parallelism
        )

    def throttle(self) -> ThrottlePolicy:
        """Login throttling limits."""
        return ThrottlePolicy(
            self.throttle_window, self.throttle_per_account, self.throttle_per_address
        )

    def client(self, client_id: str) -> ClientConfig | None:
        """The configured client with this id, or None."""
        for client in self.clients:
            if client.client_id == client_id:
                return client
        return None


class Services(NamedTuple):
    """The services a server process (or a CLI command) builds over its store."""

    tokens: TokenService
    users: UserService


async def open_services(
    settings: Settings, store: Store, *, clock: Clock | None = None
) -> Services:
    """Load (or create) the signing keys in ``store`` and build the services ``settings``
    describe. The auth server and the CLI both build theirs here, so they agree."""
    tokens = await TokenService.create(
        store, settings.token_policy(), clock=clock, kek=settings.kek_bytes()
    )
    users = UserService(
        store, tokens, hasher=PasswordHasher(settings.argon2()), throttle=settings.throttle()
    )
    return Services(tokens, users)


def _check_clients(clients: tuple[ClientConfig, ...]) -> None:
    if not clients:
        raise SettingError("clients", "need at least one client")
    seen: set[str] = set()
    for client in clients:
        client_id = client.client_id
        # RFC 6749 appendix A.1: client-id = *VSCHAR (printable ASCII).
        if not isinstance(client_id, str) or not _VSCHAR.fullmatch(client_id):
            raise SettingError(
                "clients", f"client id {client_id!r} is empty or not printable ASCII"
            )
        if client_id in seen:
            raise SettingError("clients", f"client id {client_id!r} is used twice")
        seen.add(client_id)
        secret = client.secret_sha256
        if secret is not None and not (isinstance(secret, str) and _HEX64_LOWER.fullmatch(secret)):
            raise SettingError(
                "clients", f"client {client_id!r}: secret_sha256 must be 64 lowercase hex digits"
            )


def _check_numbers(settings: Settings) -> None:
    """Each numeric setting is of its type, finite and in its range (cross-checks elsewhere)."""
    kinds = {f.name: f.type for f in fields(settings)}
    for name, (low, high, low_open, unit) in _RANGES.items():
        value = getattr(settings, name)
        integer = kinds[name] == "int"
        if type(value) is not int and (integer or type(value) is not float):
            raise SettingError(name, "must be an integer" if integer else "must be a number")
        if not integer and not math.isfinite(value):
            raise SettingError(name, "must be a finite number")
        if low_open and not low < value <= high:
            raise SettingError(name, f"must be more than {low} and at most {high}{unit}")
        if not low <= value <= high:
            raise SettingError(name, f"must be between {low} and {high}{unit}")
    for name in ("reuse_grace", "leeway"):  # TokenPolicy checks their ranges
        value = getattr(settings, name)
        if type(value) is float and not math.isfinite(value):
            raise SettingError(name, "must be a finite number")


def http_url(host: str, port: int) -> str:
    """``http://host:port``, the default issuer and the address ``serve`` prints.

    RFC 3986 sec. 3.2.2: an IPv6 address in a URL is in brackets; RFC 6874: a zone
    identifier's "%" is percent-encoded.

    >>> http_url("::1", 8000)
    'http://[::1]:8000'
    """
    if ":" in host and not host.startswith("["):
        host = "[" + host.replace("%", "%25") + "]"
    return f"http://{host}:{port}"


def _issuer_problem(issuer: Any) -> str | None:
    """Why ``issuer`` cannot be the issuer identifier, or None.

    RFC 8414 sec. 2: a URL with a scheme and a host and no query or fragment. https is
    required there; http stays allowed for local development (see the docs).
    """
    if not isinstance(issuer, str) or not issuer.startswith(("https://", "http://")):
        return "must be an http(s) URL"
    if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in issuer):
        return "must not contain spaces or control characters"
    if "?" in issuer or "#" in issuer:
        return "must have no query or fragment (RFC 8414 sec. 2)"
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018 - raises ValueError for a port that is not one
    except ValueError:
        return "is not a valid URL"
    if "@" in parts.netloc:
        return "must not contain user information"
    if not parts.hostname:
        return "must name a host"
    return None
