"""A small workload on every backend: store operations counted at the store, exactly.

20 users x 200 requests over 30 simulated minutes with 15-minute access tokens:

* server sessions: 20 logins (one write each) + one lookup per request = 4,020;
* JWT: 20 logins + one refresh per user (see test_workload) = 40, nothing per request;
* JWT + revocation feed: the same 40, plus 2 per revocation probe (its login and its
  revocation), plus the feed's own reads (SQLite polls once a second; Redis and
  PostgreSQL read a snapshot when they connect and are pushed the rest).
"""

from __future__ import annotations

import pytest

from tokenward.bench import BackendSpec, BenchConfig, Progress, run_backend
from tokenward.bench._modes import SESSION_ID_BYTES

from .conftest import SMALL

PROBES = 2


async def test_counts_per_mode(backend: BackendSpec) -> None:
    config = BenchConfig(backends=(backend,), workload=SMALL, concurrency=4, probes=PROBES)
    result = await run_backend(backend, config, Progress(enabled=False))
    sessions, jwt, feed = result.modes
    users, total = SMALL.users, SMALL.total
    refreshes = users * SMALL.expected_refreshes()
    assert refreshes == 20

    assert sessions.mode == "sessions"
    assert sessions.outcomes.served == total
    assert sessions.operations.lookups == total
    assert sessions.operations.logins == users
    assert sessions.operations.total == users + total == 4020

    assert jwt.mode == "jwt"
    assert jwt.outcomes.served == total
    assert jwt.operations.lookups == 0
    assert jwt.operations.refreshes == refreshes
    assert jwt.operations.total == users + refreshes == 40
    assert jwt.refresh_failures == 0

    assert feed.mode == "jwt_feed"
    assert feed.outcomes.served == total
    assert feed.operations.refreshes == refreshes
    assert feed.operations.revocations == 2 * PROBES
    feed_reads = feed.operations.other
    assert feed.operations.total == users + refreshes + 2 * PROBES + feed_reads
    if backend.name == "sqlite":
        assert feed_reads == feed.notes["feed_polls"] >= 1
    else:
        assert feed_reads <= 4  # snapshots on (re)connection only

    # Every probe was refused by the verifier following the feed, in bounded time.
    delays = feed.revocation_delays
    assert len(delays) == PROBES
    assert all(delay is not None and 0 <= delay < 10 for delay in delays)
    summary = feed.delay_summary()
    assert summary is not None
    assert summary["refused"] == PROBES

    # What a request carries: a 43-character session id, or a JWT of several hundred.
    assert SESSION_ID_BYTES == 32
    assert sessions.credential_bytes_per_request == 43  # 32 bytes in base64url
    assert 300 < jwt.credential_bytes_per_request < 1000
    for mode in result.modes:
        assert mode.requests_per_second > 0
        assert mode.cpu_us_per_request > 0
        latency = mode.latency_summary()
        assert latency["samples"] == total  # small runs keep every latency
        assert 0 < latency["p50_us"] <= latency["p99_us"] <= latency["max_us"]


async def test_longer_period_makes_more_refreshes() -> None:
    from tokenward.bench import Workload

    workload = Workload(users=10, requests=300, minutes=40, access_minutes=15)
    backend = BackendSpec("memory")
    config = BenchConfig(backends=(backend,), workload=workload, probes=0)
    result = await run_backend(backend, config, Progress(enabled=False))
    jwt = result.modes[1]
    assert workload.expected_refreshes() == 2
    assert jwt.operations.refreshes == 20
    assert jwt.operations.total == 10 + 20


@pytest.mark.parametrize("concurrency", [1, 16])
async def test_counts_do_not_depend_on_concurrency(concurrency: int) -> None:
    backend = BackendSpec("memory")
    config = BenchConfig(backends=(backend,), workload=SMALL, concurrency=concurrency, probes=0)
    result = await run_backend(backend, config, Progress(enabled=False))
    assert [mode.operations.total for mode in result.modes[:2]] == [4020, 40]
