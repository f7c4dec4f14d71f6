"""The cuttable loopback proxy the outage tests use (it lives in :mod:`tokenward.testing`).

Stopping the shared Redis or PostgreSQL server would disturb other tests; cutting the
proxy gives the client exactly what a dying server or a broken network gives it: reset
connections and refused reconnects, until the test restores it.
"""

from __future__ import annotations

from tokenward.testing import CuttableProxy

__all__ = ["CuttableProxy"]
