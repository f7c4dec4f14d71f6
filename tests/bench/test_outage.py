"""The outage case: the store stops at minute 12 and comes back at minute 21 (of 30).

With 10 users x 100 requests (one every 18 s per user, 1,000 in all) and 15-minute
tokens, requests 0-399 come before the outage, 400-699 during it, 700-999 after it:

* server sessions fail every request while the store is down (300) and serve
  everything before and after;
* JWT keeps serving until the login tokens expire at minute 15 (requests 400-499),
  then fails the 200 requests that need a refresh (500-699: each retries the refresh,
  and each retry fails), and serves everything again once the store is back;
* JWT with the revocation feed does the same (the follower's "accept" policy keeps
  verifying against the last known deny list); the run waits, in real time, until the
  follower has lost the feed and again until it follows it once more.
"""

from __future__ import annotations

from tokenward.bench import BackendSpec, BenchConfig, Progress, Workload
from tokenward.bench._backends import open_bench_store
from tokenward.bench._runner import BackendResult, run_outage
from tokenward.stores import StoreUnavailableError

OUTAGE = Workload(users=10, requests=100, minutes=30, access_minutes=15)


async def test_outage(stoppable: BackendSpec) -> None:
    config = BenchConfig(
        backends=(stoppable,), workload=OUTAGE, concurrency=4, outage_users=10, outage_requests=100
    )
    assert config.outage_workload() == OUTAGE
    assert (OUTAGE.index_at(0.4), OUTAGE.index_at(0.5), OUTAGE.index_at(0.7)) == (400, 500, 700)
    result = BackendResult(stoppable.name, "")
    await run_outage(stoppable, config, Progress(enabled=False), result)
    assert result.outage_note is None
    assert result.outage_minutes() == (12.0, 21.0)
    sessions, jwt, feed = result.outage

    assert sessions.mode == "sessions"
    assert (sessions.before.served, sessions.before.failed) == (400, 0)
    assert (sessions.during.served, sessions.during.failed) == (0, 300)
    assert (sessions.after.served, sessions.after.failed) == (300, 0)
    assert sessions.first_failed_minute == 12.0

    for mode in (jwt, feed):
        assert (mode.before.served, mode.before.failed) == (400, 0)
        assert (mode.during.served, mode.during.failed) == (100, 200)
        assert (mode.after.served, mode.after.failed) == (300, 0)
        assert mode.notes["refresh_failures"] == 200
        assert mode.first_failed_minute == 15.0
        assert mode.last_failed_minute is not None
        assert mode.last_failed_minute < 21.0
        assert mode.to_json()["recovered"] is True
    # The feed was lost during the outage and followed again after it.
    assert feed.notes["disconnects"] >= 1
    assert feed.notes["feed_lost_after_s"] is not None
    assert feed.notes["feed_back_after_s"] is not None


async def test_memory_has_no_outage_case() -> None:
    backend = BackendSpec("memory")
    result = BackendResult("memory", "")
    await run_outage(backend, BenchConfig(backends=(backend,)), Progress(enabled=False), result)
    assert result.outage == []
    assert result.outage_note is not None


async def test_a_stopped_store_fails_and_comes_back(stoppable: BackendSpec) -> None:
    bench = await open_bench_store(stoppable, stoppable=True)
    try:
        assert await bench.store.get_session("nothing") is None
        await bench.stop()
        for _ in range(3):
            try:
                await bench.store.get_session("nothing")
            except StoreUnavailableError:
                pass
            else:
                raise AssertionError("the stopped store answered")
        await bench.start()
        assert await bench.store.get_session("nothing") is None
    finally:
        await bench.close()
