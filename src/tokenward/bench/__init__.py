"""tokenward.bench: server sessions against JWT on the same store, measured.

``tokenward bench`` (see ``docs/bench.md``) runs one workload in three modes on one
backend and reports store operations, throughput, latency, CPU time and credential
size per mode, the revocation delay with the feed on, and what each mode does while
the store is down::

    import asyncio
    from tokenward.bench import BackendSpec, BenchConfig, Workload, run_bench

    config = BenchConfig(
        backends=(BackendSpec("sqlite"),),
        workload=Workload(users=20, requests=200, minutes=30, access_minutes=15),
    )
    report = asyncio.run(run_bench(config))
    print(report.to_json()["backends"][0]["modes"][1]["store_operations"])
"""

from __future__ import annotations

from tokenward.bench._backends import BACKENDS, BackendSpec
from tokenward.bench._modes import JwtFeedMode, JwtMode, SessionLookup, SessionMode
from tokenward.bench._progress import Progress
from tokenward.bench._runner import (
    BackendResult,
    BenchConfig,
    BenchReport,
    OutageResult,
    run_backend,
    run_bench,
    run_outage,
)
from tokenward.bench._stats import ModeResult, Outcomes, StoreOperations
from tokenward.bench._workload import Workload

__all__ = [
    "BACKENDS",
    "BackendResult",
    "BackendSpec",
    "BenchConfig",
    "BenchReport",
    "JwtFeedMode",
    "JwtMode",
    "ModeResult",
    "OutageResult",
    "Outcomes",
    "Progress",
    "SessionLookup",
    "SessionMode",
    "StoreOperations",
    "Workload",
    "run_backend",
    "run_bench",
    "run_outage",
]
