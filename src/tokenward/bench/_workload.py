"""The simulated workload: who makes which request at what simulated time.

``users`` users each make ``requests`` requests, evenly spaced over ``minutes``
simulated minutes. User ``u``'s ``i``-th request happens at::

    start + (i + u / users) * interval        where interval = minutes * 60 / requests

so the users are staggered within each interval and the requests of all users, taken
in the order ``k = i * users + u``, are in time order. The driver walks ``k`` from 0 to
``users * requests - 1`` and moves a :class:`~tokenward.testing.FrozenClock` forward
as it goes: thirty simulated minutes pass in however long the requests take to run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tokenward.errors import ConfigurationError

__all__ = ["Workload"]


@dataclass(frozen=True, slots=True)
class Workload:
    """N users x R requests over a simulated period, with a given access-token lifetime."""

    users: int = 1000
    requests: int = 10_000
    """Requests per user."""
    minutes: float = 30.0
    """The simulated period."""
    access_minutes: float = 15.0
    """The access-token lifetime."""

    def __post_init__(self) -> None:
        if type(self.users) is not int or self.users < 1:
            raise ConfigurationError("users must be a positive integer")
        if type(self.requests) is not int or self.requests < 1:
            raise ConfigurationError("requests must be a positive integer")
        for name in ("minutes", "access_minutes"):
            value = getattr(self, name)
            if type(value) not in (int, float) or not 0 < value < math.inf:
                raise ConfigurationError(f"{name} must be a positive number")
        if self.access_minutes * 60 < 2:
            raise ConfigurationError("access tokens must live at least 2 seconds")

    @property
    def total(self) -> int:
        """All requests of all users."""
        return self.users * self.requests

    @property
    def period(self) -> float:
        """The simulated period in seconds."""
        return self.minutes * 60.0

    @property
    def interval(self) -> float:
        """Simulated seconds between two requests of one user."""
        return self.period / self.requests

    @property
    def access_lifetime(self) -> float:
        """The access-token lifetime in seconds."""
        return self.access_minutes * 60.0

    def time_of(self, k: int) -> float:
        """Simulated seconds after the start at which request ``k`` happens.

        >>> Workload(users=20, requests=200).time_of(20 * 100)
        900.0
        """
        i, u = divmod(k, self.users)
        return (i + u / self.users) * self.interval

    def index_at(self, fraction: float) -> int:
        """The first request index at or after ``fraction`` of the period.

        >>> Workload(users=20, requests=200).index_at(0.4)
        1600
        """
        return min(self.total, max(0, math.ceil(fraction * self.total - 1e-9)))

    def expected_refreshes(self) -> int:
        """Refreshes per user when every user logs in at the start and refreshes on expiry.

        A user's requests span ``[u / users * interval, period)``. The login token
        expires one access lifetime after the start; each refresh happens at the first
        request at or after expiry, and the new token lives one more lifetime from that
        request (its ``iat`` is the whole second before it). This walks that schedule
        for the last user, whose count every other user shares unless a refresh falls
        within one interval of the period's end; :meth:`refreshes_of` is exact per user.

        >>> Workload(users=20, requests=200, minutes=30, access_minutes=15).expected_refreshes()
        1
        """
        return self.refreshes_of(self.users - 1)

    def refreshes_of(self, user: int) -> int:
        """Exactly how many refreshes ``user`` makes (login at time 0, integer ``iat``).

        >>> Workload(users=20, requests=200, minutes=40, access_minutes=15).refreshes_of(0)
        2
        """
        lifetime = math.floor(self.access_lifetime)
        expires = lifetime  # the login token: iat 0 (the start is a whole second)
        count = 0
        offset = user / self.users
        i = 0
        while True:
            # The first request of this user at or after the expiry.
            i = max(i, math.ceil(expires / self.interval - offset - 1e-12))
            while (i + offset) * self.interval < expires:
                i += 1
            if i >= self.requests:
                return count
            count += 1
            expires = math.floor((i + offset) * self.interval) + lifetime
