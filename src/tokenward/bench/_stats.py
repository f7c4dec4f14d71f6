"""Figures: latency samples and percentiles, outcome counts, and the per-mode result.

Latencies are sampled, not stored: a run of ten million requests keeps about
:data:`LATENCY_SAMPLES` of them (every n-th request, evenly spread over the run), which
is plenty for a p99 and costs nothing on the requests that are not sampled.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "FAILED",
    "LATENCY_SAMPLES",
    "REFUSED",
    "SERVED",
    "ModeResult",
    "Outcomes",
    "StoreOperations",
    "percentile",
    "sample_every",
    "summarize_latencies",
]

SERVED = 0
"""The request was answered (the credential was accepted)."""
REFUSED = 1
"""The credential was refused (revoked, expired session, unknown session id)."""
FAILED = 2
"""The request could not be answered because the store was unavailable (a 503)."""

LATENCY_SAMPLES = 100_000
"""About how many request latencies a run keeps."""


def sample_every(total: int, samples: int = LATENCY_SAMPLES) -> int:
    """The sampling stride that keeps about ``samples`` of ``total`` requests.

    >>> sample_every(10_000_000), sample_every(4_000)
    (100, 1)
    """
    return max(1, total // max(1, samples))


def percentile(ordered: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of already sorted values (0.0 for none).

    >>> percentile([1.0, 2.0, 3.0, 4.0], 0.5), percentile([1.0, 2.0, 3.0, 4.0], 0.99)
    (2.0, 4.0)
    """
    if not ordered:
        return 0.0
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def summarize_latencies(samples: Sequence[float]) -> dict[str, float | int]:
    """p50, p99, mean and max in microseconds, and the number of samples."""
    ordered = sorted(samples)
    mean = sum(ordered) / len(ordered) if ordered else 0.0
    return {
        "p50_us": round(percentile(ordered, 0.50) * 1e6, 2),
        "p99_us": round(percentile(ordered, 0.99) * 1e6, 2),
        "mean_us": round(mean * 1e6, 2),
        "max_us": round((ordered[-1] if ordered else 0.0) * 1e6, 2),
        "samples": len(ordered),
    }


@dataclass(slots=True)
class Outcomes:
    """How many requests were served, refused and failed."""

    served: int = 0
    refused: int = 0
    failed: int = 0

    @classmethod
    def from_counts(cls, counts: Sequence[int]) -> Outcomes:
        """From a ``[served, refused, failed]`` list as the driver keeps it."""
        return cls(counts[SERVED], counts[REFUSED], counts[FAILED])

    @property
    def total(self) -> int:
        """All requests."""
        return self.served + self.refused + self.failed

    def to_json(self) -> dict[str, int]:
        """The counts as a JSON object."""
        return {"served": self.served, "refused": self.refused, "failed": self.failed}


@dataclass(slots=True)
class StoreOperations:
    """Store round trips, counted at the store (its ``operations`` counter).

    ``total`` is the store's own count; the parts are what the bench itself asked for,
    and ``other`` is the rest (revocation-feed polls and snapshots).
    """

    total: int = 0
    logins: int = 0
    lookups: int = 0
    refreshes: int = 0
    revocations: int = 0

    @property
    def other(self) -> int:
        """Operations the bench did not ask for itself: the revocation feed's."""
        return max(0, self.total - self.logins - self.lookups - self.refreshes - self.revocations)

    def to_json(self) -> dict[str, int]:
        """The counts as a JSON object."""
        return {
            "total": self.total,
            "logins": self.logins,
            "session_lookups": self.lookups,
            "refreshes": self.refreshes,
            "revocation_probes": self.revocations,
            "feed_and_other": self.other,
        }


@dataclass(slots=True)
class ModeResult:
    """Everything measured for one mode on one backend."""

    mode: str
    label: str
    requests: int
    outcomes: Outcomes
    operations: StoreOperations
    wall_seconds: float
    cpu_seconds: float
    latencies: list[float]
    credential_bytes: int
    """Credential bytes sent over the whole run (token or session id, per request)."""
    refresh_failures: int = 0
    revocation_delays: list[float | None] = field(default_factory=list)
    """Seconds from ``revoke_session`` returning to the verifier's first refusal, per
    probe; None for a probe not refused within the time limit."""
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        """Throughput over the request phase."""
        return self.requests / self.wall_seconds if self.wall_seconds > 0 else 0.0

    @property
    def cpu_us_per_request(self) -> float:
        """This process's CPU time (all threads) per request, in microseconds."""
        return self.cpu_seconds / self.requests * 1e6 if self.requests else 0.0

    @property
    def credential_bytes_per_request(self) -> float:
        """The mean credential size a request carries."""
        return self.credential_bytes / self.requests if self.requests else 0.0

    @property
    def operations_per_1000(self) -> float:
        """Store operations per thousand requests."""
        return self.operations.total / self.requests * 1000 if self.requests else 0.0

    def latency_summary(self) -> dict[str, float | int]:
        """p50/p99/mean/max latency in microseconds."""
        return summarize_latencies(self.latencies)

    def delay_summary(self) -> dict[str, Any] | None:
        """Revocation delay figures in milliseconds, or None when not measured."""
        if not self.revocation_delays:
            return None
        measured = sorted(d for d in self.revocation_delays if d is not None)
        return {
            "probes": len(self.revocation_delays),
            "refused": len(measured),
            "p50_ms": round(percentile(measured, 0.5) * 1e3, 2) if measured else None,
            "max_ms": round(measured[-1] * 1e3, 2) if measured else None,
            "samples_ms": [
                None if d is None else round(d * 1e3, 3) for d in self.revocation_delays
            ],
        }

    def to_json(self) -> dict[str, Any]:
        """All figures as a JSON object."""
        return {
            "mode": self.mode,
            "label": self.label,
            "requests": self.requests,
            "outcomes": self.outcomes.to_json(),
            "store_operations": self.operations.to_json(),
            "store_operations_per_1000_requests": round(self.operations_per_1000, 3),
            "wall_seconds": round(self.wall_seconds, 4),
            "requests_per_second": round(self.requests_per_second, 1),
            "latency": self.latency_summary(),
            "cpu_us_per_request": round(self.cpu_us_per_request, 3),
            "credential_bytes_per_request": round(self.credential_bytes_per_request, 1),
            "refresh_failures": self.refresh_failures,
            "revocation_delay": self.delay_summary(),
            **({"notes": self.notes} if self.notes else {}),
        }
