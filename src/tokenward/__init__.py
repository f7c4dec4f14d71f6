"""tokenward: JWT authentication for Python services, from login to "this request is allowed"."""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
