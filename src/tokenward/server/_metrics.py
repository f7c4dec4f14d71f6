"""Prometheus counters, kept on the application (no process-global registry).

The text exposition format (version 0.0.4) is small enough to write by hand: ``# HELP``
and ``# TYPE`` lines, then one sample per label combination. Counters only go up; a
scrape reads a consistent-enough snapshot because every increment happens on the one
event loop thread.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

__all__ = ["Counter", "Metrics", "metrics_endpoint"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class Counter:
    """A monotonically increasing counter, optionally split by labels.

    >>> logins = Counter("logins_total", "Password logins.", ("result",))
    >>> logins.inc("success")
    >>> print(logins.render())
    # HELP logins_total Password logins.
    # TYPE logins_total counter
    logins_total{result="success"} 1
    """

    __slots__ = ("help", "labels", "name", "values")

    def __init__(self, name: str, help_text: str, labels: tuple[str, ...] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labels = labels
        self.values: dict[tuple[str, ...], int] = {} if labels else {(): 0}

    def inc(self, *label_values: str, amount: int = 1) -> None:
        """Add ``amount`` to the sample with these label values."""
        if len(label_values) != len(self.labels):
            raise ValueError(f"{self.name} takes labels {self.labels}")
        self.values[label_values] = self.values.get(label_values, 0) + amount

    def get(self, *label_values: str) -> int:
        """The current value of one sample (0 if never incremented)."""
        return self.values.get(label_values, 0)

    def render(self) -> str:
        """The counter in Prometheus text format."""
        lines = [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} counter"]
        for key, value in sorted(self.values.items()):
            if key:
                pairs = ",".join(
                    f'{label}="{_escape(v)}"' for label, v in zip(self.labels, key, strict=True)
                )
                lines.append(f"{self.name}{{{pairs}}} {value}")
            else:
                lines.append(f"{self.name} {value}")
        return "\n".join(lines)


class Metrics:
    """The server's counters; one instance per application."""

    def __init__(self) -> None:
        self.logins = Counter(
            "tokenward_logins_total",
            "Password logins by result (success, failure, throttled).",
            ("result",),
        )
        self.refreshes = Counter(
            "tokenward_refreshes_total", "Refresh token exchanges by result.", ("result",)
        )
        self.reuse_detected = Counter(
            "tokenward_refresh_reuse_detected_total",
            "Superseded refresh tokens presented again (their session was revoked).",
        )
        self.revocations = Counter(
            "tokenward_revocations_total",
            "Revocations by scope (session, user) and cause.",
            ("kind", "cause"),
        )
        self.verification_failures = Counter(
            "tokenward_verification_failures_total",
            "Rejected access tokens by error code.",
            ("code",),
        )
        self.client_auth_failures = Counter(
            "tokenward_client_auth_failures_total", "Failed OAuth client authentications."
        )
        self.csrf_failures = Counter(
            "tokenward_csrf_failures_total", "Cookie-mode requests refused by the CSRF checks."
        )
        self.store_unavailable = Counter(
            "tokenward_store_unavailable_total",
            "Requests and background tasks that found the store unavailable.",
        )

    def render(self) -> str:
        """Every counter, in Prometheus text format, newline-terminated."""
        counters = (
            self.logins, self.refreshes, self.reuse_detected, self.revocations,
            self.verification_failures, self.client_auth_failures, self.csrf_failures,
            self.store_unavailable,
        )  # fmt: skip
        return "\n".join(c.render() for c in counters) + "\n"


async def metrics_endpoint(request: Request) -> Response:
    """``GET /metrics``: the counters for Prometheus to scrape."""
    metrics: Metrics = request.app.state.tokenward.metrics
    return Response(metrics.render(), media_type=CONTENT_TYPE)
