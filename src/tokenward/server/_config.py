"""Server settings: defaults, then an optional TOML file, then ``TOKENWARD_*`` environment
variables, then command-line flags; each later source overrides the earlier ones.

Every value is validated when the server starts; an error names the setting, where it
came from and what is wrong, and the server does not start.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, NamedTuple

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

__all__ = ["ClientConfig", "Services", "Settings", "load_settings", "open_services"]

_ENV_PREFIX = "TOKENWARD_"


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
    store: str = "sqlite:///tokenward.db"
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
        if not self.issuer:
            object.__setattr__(self, "issuer", f"http://{self.host}:{self.port}")
        if not 0 < self.port < 65536:
            raise ConfigurationError("port: must be between 1 and 65535")
        if self.algorithm not in ALGORITHMS:
            raise ConfigurationError(f"algorithm: {self.algorithm!r} is not supported")
        if not self.issuer.startswith(("https://", "http://")):
            raise ConfigurationError("issuer: must be an http(s) URL")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigurationError("log_level: must be DEBUG, INFO, WARNING or ERROR")
        if self.key_rotation_days < 0 or self.jwks_max_age < 0 or self.purge_interval <= 0:
            raise ConfigurationError("key_rotation_days, jwks_max_age: must not be negative")
        for proxy in self.trusted_proxies:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ConfigurationError(
                    f"trusted_proxies: {proxy!r} is not an IP or CIDR"
                ) from None
        ids = [c.client_id for c in self.clients]
        if not ids or len(set(ids)) != len(ids):
            raise ConfigurationError("clients: need at least one client and unique client ids")
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
            raise ConfigurationError("kek: must be 32 random octets, base64url-encoded")
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
            raise ConfigurationError(f"token policy: {exc.message}") from None

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


def _parse(kind: str, value: Any) -> Any:
    """Turn a TOML or environment value into the setting's type; ValueError if it is not."""
    text = isinstance(value, str)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text and value.lower() in ("1", "true", "yes", "on"):
            return True
        if text and value.lower() in ("0", "false", "no", "off"):
            return False
    elif kind in ("int", "float"):
        if not isinstance(value, bool) and isinstance(value, int | float | str):
            return int(value) if kind == "int" else float(value)
    elif kind == "tuple[str, ...]":
        items = value.split(",") if text else value
        if isinstance(items, list | tuple) and all(isinstance(i, str) for i in items):
            return tuple(i.strip() for i in items if i.strip())
    elif kind in ("str", "str | None") and text:
        return value
    raise ValueError(kind)


def _coerce(name: str, kind: str, value: Any, source: str) -> Any:
    try:
        return _parse(kind, value)
    except ValueError:
        raise ConfigurationError(
            f"{name} (from {source}): {value!r} is not a valid {kind}"
        ) from None


def _clients(value: Any, source: str) -> tuple[ClientConfig, ...]:
    if not isinstance(value, list):
        raise ConfigurationError(f"clients (from {source}): must be an array of tables")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            raise ConfigurationError(f"clients (from {source}): each client needs an id")
        secret = item.get("secret_sha256")
        if secret is not None and (
            not isinstance(secret, str) or len(secret) != 64 or not _is_hex(secret)
        ):
            raise ConfigurationError(f"clients (from {source}): secret_sha256 must be 64 hex")
        out.append(ClientConfig(item["id"], secret.lower() if secret else None))
    return tuple(out)


def _is_hex(text: str) -> bool:
    try:
        bytes.fromhex(text)
    except ValueError:
        return False
    return True


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build validated settings from a TOML file, the environment and explicit overrides."""
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {}
    if config_file is not None:
        path = Path(config_file)
        try:
            document = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigurationError(f"config file {path}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"config file {path}: {exc}") from None
        section = document.get("tokenward", document)
        for name, value in section.items():
            if name not in kinds:
                raise ConfigurationError(f"config file {path}: unknown setting {name!r}")
            source = f"config file {path}"
            if name == "clients":
                values[name] = _clients(value, source)
            else:
                values[name] = _coerce(name, kinds[name], value, source)
    for key, value in (env or {}).items():
        if not key.startswith(_ENV_PREFIX):
            continue
        name = key[len(_ENV_PREFIX) :].lower()
        if name not in kinds or name == "clients":
            continue
        values[name] = _coerce(name, kinds[name], value, f"environment {key}")
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, kinds[name], value, "command line")
    return Settings(**values)
