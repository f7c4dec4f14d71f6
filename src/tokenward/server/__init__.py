"""tokenward.server: the HTTP auth server (OAuth 2.0 endpoints, JWKS, sessions, users)."""

from __future__ import annotations

from tokenward.server._app import create_app
from tokenward.server._audit import JSONLinesFormatter, configure_logging
from tokenward.server._config import (
    ClientConfig,
    Services,
    Settings,
    open_services,
)
from tokenward.server._config_load import load_settings

__all__ = [
    "ClientConfig",
    "JSONLinesFormatter",
    "Services",
    "Settings",
    "configure_logging",
    "create_app",
    "load_settings",
    "open_services",
]
