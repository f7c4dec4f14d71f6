"""Reading settings: an optional TOML file, then ``TOKENWARD_*`` environment variables,
then command-line flags, each over the previous ones (see ``docs/configuration.md``).

Values are parsed strictly here (no truncated floats, ASCII digits only, no unknown
keys or variables) and validated by :class:`Settings`; an error names the setting and
where its value came from.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from tokenward.errors import ConfigurationError
from tokenward.server._config import ClientConfig, SettingError, Settings

__all__ = ["load_settings"]

_ENV_PREFIX = "TOKENWARD_"
# TOKENWARD_* variables that are not settings: the CLI's config file, the test suite's
# switches, the benchmark servers' and the examples' own variables.
_NOT_SETTINGS = frozenset(
    {
        "TOKENWARD_CONFIG",
        "TOKENWARD_JWKS",
        "TOKENWARD_PASSWORD",
        "TOKENWARD_REQUIRE_SERVICES",
        "TOKENWARD_TOKEN_URL",
        "TOKENWARD_VECTORS",
    }
)
_NOT_SETTINGS_PREFIXES = ("TOKENWARD_BENCH_", "TOKENWARD_TEST_")

_INT_TEXT = re.compile(r"-?[0-9]+")
_FLOAT_TEXT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
_CLIENT_KEYS = frozenset({"id", "secret_sha256"})
_SECRET_SETTINGS = frozenset({"kek", "store"})  # their values are never shown
_SHOWN_MAX = 40  # characters of a wrong value quoted in an error
_KIND_NAMES = {"str | None": "str", "tuple[str, ...]": "list of strings"}


def _parse(kind: str, value: Any) -> Any:
    """Turn a TOML or environment value into the setting's type; ValueError if it is not.

    Numbers in text are ASCII digits in plain decimal notation: ``int()`` and ``float()``
    also take other scripts' digits, ``_`` separators, exponents, ``inf`` and ``nan``.
    A TOML float is never an integer setting, as ``"8000.9"`` is not in the environment.
    """
    text = isinstance(value, str)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if text and value.lower() in ("1", "true", "yes", "on"):
            return True
        if text and value.lower() in ("0", "false", "no", "off"):
            return False
    elif kind == "int":
        if type(value) is int:
            return value
        if text and _INT_TEXT.fullmatch(value):
            return int(value)
    elif kind == "float":
        if type(value) in (int, float):
            return float(value)
        if text and _FLOAT_TEXT.fullmatch(value):
            return float(value)
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
        shown = "the value" if name in _SECRET_SETTINGS else repr(value)
        if len(shown) > _SHOWN_MAX:
            shown = shown[: _SHOWN_MAX - 3] + "..."
        expected = _KIND_NAMES.get(kind, kind)
        raise ConfigurationError(
            f"{name} (from {source}): {shown} is not a valid {expected}"
        ) from None


def _clients(value: Any, source: str) -> tuple[ClientConfig, ...]:
    """The ``clients`` array of a config file; ids are checked with the other settings."""
    if not isinstance(value, list):
        raise ConfigurationError(f"clients (from {source}): must be an array of tables")
    out = []
    for number, item in enumerate(value, 1):
        where = f"clients (from {source}): client {number}"
        if not isinstance(item, dict):
            raise ConfigurationError(f"{where}: must be a table")
        for key in item:
            if key not in _CLIENT_KEYS:
                raise ConfigurationError(f"{where}: unknown key {key!r}{_client_key_hint(key)}")
        if not isinstance(item.get("id"), str):
            raise ConfigurationError(f"{where}: needs an id (a string)")
        secret = item.get("secret_sha256")
        if secret is not None and not (isinstance(secret, str) and _HEX64.fullmatch(secret)):
            raise ConfigurationError(f"{where}: secret_sha256 must be 64 hex digits")
        out.append(ClientConfig(item["id"], secret.lower() if secret else None))
    return tuple(out)


def _client_key_hint(key: str) -> str:
    if "secret" in key.lower() or "password" in key.lower():
        return "; a confidential client takes secret_sha256, the SHA-256 hex digest of its secret"
    return _did_you_mean(key, _CLIENT_KEYS)


def _did_you_mean(name: str, candidates: Iterable[str], *, prefix: str = "") -> str:
    """A hint naming the candidate closest to ``name``, if one is close."""
    close = difflib.get_close_matches(name, list(candidates), n=1)
    if not close:
        return ""
    return (
        f" (did you mean {prefix + close[0].upper()}?)"
        if prefix
        else f" (did you mean {close[0]!r}?)"
    )


def _explain(error: SettingError, sources: Mapping[str, str]) -> str:
    """``error``'s message with where each setting it names came from."""

    def origin(name: str) -> str:
        return f"{name} (from {sources[name]})" if name in sources else f"{name} (default)"

    reason = error.reason
    if error.mentions:
        names = "|".join(re.escape(name) for name in error.mentions)
        reason = re.sub(rf"\b({names})\b", lambda match: origin(match[1]), reason)
    return f"{origin(error.setting)}: {reason}"


def _read_toml(path: Path) -> dict[str, Any]:
    """The settings table of the config file at ``path``."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"config file {path}: {exc.strerror or exc}") from None
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigurationError(f"config file {path}: line {line} is not UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"config file {path}: {exc}") from None
    if "tokenward" not in document:
        return document
    section = document["tokenward"]
    if not isinstance(section, dict):
        raise ConfigurationError(f"config file {path}: tokenward must be a table")
    for name in document:
        if name != "tokenward":
            raise ConfigurationError(
                f"config file {path}: unknown top-level key {name!r} "
                "(settings go in the [tokenward] table)"
            )
    return section


def load_settings(
    config_file: str | Path | None = None,
    *,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Build validated settings from a TOML file, the environment and explicit overrides.

    Every ``TOKENWARD_*`` variable in ``env`` must name a setting, or be one of the
    variables that tokenward's tools, tests and examples read.

    >>> load_settings(env={"TOKENWARD_PORT": "9000"}).issuer
    'http://127.0.0.1:9000'
    """
    kinds = {f.name: str(f.type) for f in fields(Settings)}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    if config_file is not None:
        path = Path(config_file)
        source = f"config file {path}"
        for name, value in _read_toml(path).items():
            if name not in kinds:
                raise ConfigurationError(
                    f"{source}: unknown setting {name!r}{_did_you_mean(name, kinds)}"
                )
            if name == "clients":
                values[name] = _clients(value, source)
            else:
                values[name] = _coerce(name, kinds[name], value, source)
            sources[name] = source
    for key, value in (env or {}).items():
        if not key.startswith(_ENV_PREFIX) or key in _NOT_SETTINGS:
            continue
        if key.startswith(_NOT_SETTINGS_PREFIXES):
            continue
        name = key[len(_ENV_PREFIX) :].lower()
        if name == "clients":
            raise ConfigurationError(
                f"environment {key}: clients can only be set in the config file"
            )
        if name not in kinds or key != key.upper():
            settings = [other for other in kinds if other != "clients"]
            hint = _did_you_mean(name, settings, prefix=_ENV_PREFIX)
            raise ConfigurationError(f"environment {key}: not a tokenward setting{hint}")
        source = f"environment {key}"
        values[name] = _coerce(name, kinds[name], value, source)
        sources[name] = source
    for name, value in (overrides or {}).items():
        if value is not None:
            values[name] = _coerce(name, kinds[name], value, "command line")
            sources[name] = "command line"
    try:
        return Settings(**values)
    except SettingError as exc:
        raise ConfigurationError(_explain(exc, sources)) from None
