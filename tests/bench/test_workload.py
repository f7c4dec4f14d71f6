"""The workload schedule, and the refresh count it implies."""

from __future__ import annotations

import math

import pytest

from tokenward.bench import Workload
from tokenward.errors import ConfigurationError

from .conftest import SMALL


def test_requests_are_in_time_order_and_staggered() -> None:
    times = [SMALL.time_of(k) for k in range(SMALL.total)]
    assert times == sorted(times)
    assert times[0] == 0.0
    assert SMALL.interval == 9.0  # 30 minutes / 200 requests
    # User 1's first request is a twentieth of an interval after user 0's.
    assert SMALL.time_of(1) == pytest.approx(0.45)
    assert SMALL.time_of(SMALL.total - 1) < SMALL.period


def test_the_small_workload_makes_one_refresh_per_user() -> None:
    # Every user logs in at minute 0 (token expires at minute 15) and requests every 9 s
    # until just before minute 30. The first request at or after minute 15 refreshes; the
    # new token expires 15 minutes after that request, past the last one. So each user
    # uses two access tokens and makes ceil(30 / 15) - 1 = 1 refresh: the store is
    # touched twice per user (login, refresh) against 200 times with server sessions.
    assert SMALL.expected_refreshes() == math.ceil(30 / 15) - 1 == 1
    assert all(SMALL.refreshes_of(user) == 1 for user in range(SMALL.users))


@pytest.mark.parametrize(
    ("minutes", "access_minutes", "refreshes"),
    [(30, 15, 1), (40, 15, 2), (14, 15, 0), (60, 15, 3), (30, 5, 5), (30, 60, 0)],
)
def test_refreshes_follow_the_token_lifetime(
    minutes: float, access_minutes: float, refreshes: int
) -> None:
    workload = Workload(users=10, requests=300, minutes=minutes, access_minutes=access_minutes)
    assert workload.expected_refreshes() == refreshes


def test_a_refresh_resets_the_expiry_from_the_refresh_time() -> None:
    # Tokens of exactly half the period: the refresh at minute 15 (+ up to one interval)
    # expires just after minute 30, which the requests never reach.
    workload = Workload(users=3, requests=6, minutes=30, access_minutes=15)
    assert [workload.refreshes_of(user) for user in range(3)] == [1, 1, 1]


def test_index_at_marks_the_outage_window() -> None:
    assert SMALL.index_at(0.4) == 1600
    assert SMALL.time_of(1600) == 12 * 60
    assert SMALL.index_at(0.7) == 2800
    assert SMALL.time_of(2800) == 21 * 60


@pytest.mark.parametrize(
    "kwargs",
    [{"users": 0}, {"requests": 0}, {"minutes": 0}, {"access_minutes": -1}, {"minutes": math.inf}],
)
def test_bad_workloads_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ConfigurationError):
        Workload(**kwargs)  # type: ignore[arg-type]
