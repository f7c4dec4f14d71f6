"""How long a fetched response stays fresh, for the private cache of :class:`RemoteJWKS`.

RFC 9111 sec. 4.2 over the fields a JWKS server sends: ``Cache-Control`` (``no-store``,
``no-cache``, ``max-age``), ``Expires`` with ``Date``, and ``Age``. The cache is private
(one verifier process), so ``s-maxage`` does not apply to it (sec. 5.2.2.10).

The field values come from the peer and are parsed strictly: numbers are ASCII
``1*DIGIT`` (``str.isdigit`` alone also takes "²", which ``int()`` refuses, and
Arabic-Indic digits, which it reads as a number), and dates are one of the three
HTTP-date forms. Nothing here raises on a value a server sends; a malformed value counts
as the RFC says for that field.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Mapping

__all__ = ["DELTA_SECONDS_MAX", "freshness_lifetime", "http_date", "parse_digits"]

#: RFC 9111 sec. 1.2.2: a delta-seconds too large to represent counts as 2^31 (68 years).
DELTA_SECONDS_MAX = 2**31

_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MONTH = f"(?P<month>{'|'.join(_MONTHS)})"
_TIME = "(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2}):(?P<second>[0-9]{2})"
_DAY_NAME = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun)"
# RFC 9110 sec. 5.6.7: a recipient MUST accept all three forms, the two obsolete ones too.
# Day and month names and "GMT" are case-sensitive there; the day name is not checked
# against the date.
_HTTP_DATES = (
    # IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
    re.compile(rf"{_DAY_NAME}, (?P<day>[0-9]{{2}}) {_MONTH} (?P<year>[0-9]{{4}}) {_TIME} GMT"),
    # rfc850-date: "Sunday, 06-Nov-94 08:49:37 GMT"
    re.compile(
        r"(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), "
        rf"(?P<day>[0-9]{{2}})-{_MONTH}-(?P<year>[0-9]{{2}}) {_TIME} GMT"
    ),
    # asctime-date: "Sun Nov  6 08:49:37 1994"
    re.compile(rf"{_DAY_NAME} {_MONTH} (?P<day>[0-9]{{2}}| [0-9]) {_TIME} (?P<year>[0-9]{{4}})"),
)


def parse_digits(text: str, *, cap: int) -> int | None:
    """The value of ``1*DIGIT`` (ASCII digits only), at most ``cap``; None for anything else.

    >>> parse_digits("0042", cap=100), parse_digits("9" * 5000, cap=100), parse_digits("²", cap=100)
    (42, 100, None)
    """
    if not (text.isascii() and text.isdigit()):
        return None
    significant = text.lstrip("0")
    # int() refuses more than 4300 digits (a ValueError); no number that long is needed.
    if len(significant) > len(str(cap)):
        return cap
    return min(int(significant or "0"), cap)


def http_date(text: str, *, now: float) -> float | None:
    """Seconds since the epoch of an HTTP-date (RFC 9110 sec. 5.6.7); None if it is not one.

    ``now`` (seconds since the epoch) places the two-digit year of an rfc850-date.

    >>> http_date("Sun, 06 Nov 1994 08:49:37 GMT", now=0.0)
    784111777.0
    """
    text = text.strip(" \t")
    for form in _HTTP_DATES:
        match = form.fullmatch(text)
        if match is not None:
            break
    else:
        return None
    year = int(match["year"])
    if len(match["year"]) == 2:
        # RFC 9110 sec. 5.6.7: a two-digit year that would be more than 50 years in the
        # future is the most recent past year with those digits.
        latest = datetime.datetime.fromtimestamp(now, datetime.UTC).year + 50
        year = latest - (latest - year) % 100
    try:
        stamp = datetime.datetime(
            year,
            _MONTHS.index(match["month"]) + 1,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            min(int(match["second"]), 59),  # A leap second (60) counts as 59.
            tzinfo=datetime.UTC,
        )
    except ValueError:
        return None  # No such day or time ("30 Feb", "24:00:00"), or year 0.
    return stamp.timestamp()


def freshness_lifetime(headers: Mapping[str, str], *, received: float) -> float | None:
    """Seconds a response stays fresh in a private cache, or None when it does not say.

    ``headers`` is the response's case-insensitive field mapping (``httpx.Headers``, which
    joins repeated fields with ", "); ``received`` is the local time of the response.
    The result is the freshness lifetime minus the ``Age`` the response already has
    (RFC 9111 sec. 4.2), at least 0 (stale at once).

    >>> freshness_lifetime({"cache-control": "max-age=600", "age": "100"}, received=0.0)
    500.0
    """
    directives: dict[str, str] = {}
    for item in (headers.get("cache-control") or "").split(","):
        name, _, value = item.partition("=")
        # Sec. 4.2.1: of a directive given twice, the first occurrence may be used.
        directives.setdefault(name.strip().lower(), value.strip().strip('"'))
    # The most restrictive directive wins (sec. 4.2.1), wherever it stands in the list.
    if "no-store" in directives or "no-cache" in directives:
        return 0.0
    lifetime: float
    if "max-age" in directives:
        max_age = parse_digits(directives["max-age"], cap=DELTA_SECONDS_MAX)
        if max_age is None:
            # Sec. 4.2.1 encourages treating an invalid max-age as stale; here it counts
            # as no freshness information (the caller's default), so a typo on the
            # server does not become a refetch every min_interval. Expires stays ignored
            # (sec. 5.3: a max-age directive overrides it).
            return None
        lifetime = max_age
    elif (expires := headers.get("expires")) is not None:
        expires_at = http_date(expires, now=received)
        if expires_at is None:
            return 0.0  # Sec. 5.3: an invalid date ("0", or two of them) is in the past.
        # Sec. 4.2.1: Expires minus Date, both the server's clock, so a skewed local clock
        # does not matter. Without a (valid) Date the receive time stands in for it
        # (RFC 9110 sec. 6.6.1).
        date = http_date(headers.get("date") or "", now=received)
        lifetime = expires_at - (received if date is None else date)
    else:
        return None
    # Sec. 5.1: of a list-valued Age the first member counts; an invalid one is ignored.
    age = parse_digits((headers.get("age") or "").partition(",")[0].strip(), cap=DELTA_SECONDS_MAX)
    return max(float(lifetime - (age or 0)), 0.0)
