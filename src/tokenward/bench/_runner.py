"""Run the bench: per backend, the three modes on one workload, then the outage case.

Every mode gets the same store, the same workload and the same simulated clock (each
mode starts a minute after the previous one ended, since a clock only moves forward).
Store operations are the store's own ``operations`` counter, read before the mode's
logins and after its last request; the bench also counts what it asked for (logins,
lookups, refreshes, probes) so the report can say where they went.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tokenward import __version__
from tokenward.bench._backends import BackendSpec, BenchStore, open_bench_store
from tokenward.bench._modes import JwtFeedMode, JwtMode, Mode, SessionMode
from tokenward.bench._progress import Progress
from tokenward.bench._stats import ModeResult, Outcomes, StoreOperations, sample_every
from tokenward.bench._workload import Workload
from tokenward.errors import ConfigurationError
from tokenward.service import TokenPolicy, TokenService
from tokenward.testing import FrozenClock

__all__ = [
    "ISSUER",
    "OUTAGE_WINDOW",
    "BackendResult",
    "BenchConfig",
    "BenchReport",
    "OutageResult",
    "run_backend",
    "run_bench",
    "run_outage",
]

ISSUER = "https://bench.tokenward.invalid"
"""The issuer of the bench's tokens (never a real host)."""
OUTAGE_WINDOW = (0.4, 0.7)
"""The store is down from 40% to 70% of the simulated period in the outage case."""
OUTAGE_USERS = 50
OUTAGE_REQUESTS = 200


@dataclass(frozen=True, slots=True)
class BenchConfig:
    """What to run: backends, workload, and the optional parts."""

    backends: tuple[BackendSpec, ...]
    workload: Workload = field(default_factory=Workload)
    concurrency: int = 8
    """Requests in flight at once (the simulated server's concurrency)."""
    probes: int = 5
    """Revocation probes in the feed mode."""
    outage: bool = True
    outage_users: int = OUTAGE_USERS
    outage_requests: int = OUTAGE_REQUESTS
    real: bool = False
    seconds: float = 10.0
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.backends:
            raise ConfigurationError("no store to run on")
        if type(self.concurrency) is not int or not 1 <= self.concurrency <= 1024:
            raise ConfigurationError("concurrency must be between 1 and 1024")
        if type(self.probes) is not int or not 0 <= self.probes <= 100:
            raise ConfigurationError("revocation probes must be between 0 and 100")
        if not 0 < self.seconds <= 3600:
            raise ConfigurationError("seconds must be between 0 and 3600")

    def outage_workload(self) -> Workload:
        """The smaller workload of the outage case (same period and token lifetime)."""
        w = self.workload
        return Workload(
            users=min(w.users, self.outage_users),
            requests=min(w.requests, self.outage_requests),
            minutes=w.minutes,
            access_minutes=w.access_minutes,
        )


@dataclass(slots=True)
class OutageResult:
    """One mode through the outage: outcomes before, during and after it."""

    mode: str
    label: str
    before: Outcomes
    during: Outcomes
    after: Outcomes
    operations: int
    first_failed_minute: float | None
    last_failed_minute: float | None
    notes: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """All figures as a JSON object."""
        return {
            "mode": self.mode,
            "label": self.label,
            "before": self.before.to_json(),
            "during": self.during.to_json(),
            "after": self.after.to_json(),
            "store_operations": self.operations,
            "first_failed_minute": _round(self.first_failed_minute),
            "last_failed_minute": _round(self.last_failed_minute),
            "recovered": self.after.failed == 0 and self.after.served > 0,
            **({"notes": self.notes} if self.notes else {}),
        }


@dataclass(slots=True)
class BackendResult:
    """Everything measured on one backend."""

    backend: str
    display: str
    modes: list[ModeResult] = field(default_factory=list)
    outage: list[OutageResult] = field(default_factory=list)
    outage_workload: Workload | None = None
    outage_note: str | None = None
    real: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        """All figures as a JSON object."""
        data: dict[str, Any] = {"store": self.backend, "url": self.display}
        if self.modes:
            data["modes"] = [mode.to_json() for mode in self.modes]
        if self.outage or self.outage_note:
            data["outage"] = {
                "window": {
                    "down_at_minute": _round(self.outage_minutes()[0]),
                    "up_at_minute": _round(self.outage_minutes()[1]),
                },
                "workload": _workload_json(self.outage_workload) if self.outage_workload else None,
                "modes": [result.to_json() for result in self.outage],
                **({"note": self.outage_note} if self.outage_note else {}),
            }
        if self.real is not None:
            data["real"] = self.real
        return data

    def outage_minutes(self) -> tuple[float, float]:
        """The simulated minutes at which the store went down and came back."""
        w = self.outage_workload
        if w is None:
            return (0.0, 0.0)
        return (
            w.time_of(w.index_at(OUTAGE_WINDOW[0])) / 60,
            w.time_of(w.index_at(OUTAGE_WINDOW[1])) / 60,
        )


@dataclass(slots=True)
class BenchReport:
    """The whole run: configuration, environment and per-backend results."""

    config: BenchConfig
    backends: list[BackendResult] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    chart: str | None = None

    def to_json(self) -> dict[str, Any]:
        """All figures as a JSON object (what ``--json`` writes)."""
        config = self.config
        return {
            "tokenward": __version__,
            "started_at": round(self.started_at, 3),
            "finished_at": round(self.finished_at, 3),
            "environment": environment(),
            "workload": {
                **_workload_json(config.workload),
                "concurrency": config.concurrency,
                "revocation_probes": config.probes,
            },
            "real": {"seconds": config.seconds, "concurrency": config.concurrency}
            if config.real
            else None,
            "backends": [backend.to_json() for backend in self.backends],
            "chart": self.chart,
        }


def environment() -> dict[str, Any]:
    """Where the figures were measured."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def _workload_json(workload: Workload) -> dict[str, Any]:
    return {
        "users": workload.users,
        "requests_per_user": workload.requests,
        "total_requests": workload.total,
        "minutes": workload.minutes,
        "access_minutes": workload.access_minutes,
    }


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def _policy(workload: Workload) -> TokenPolicy:
    lifetime = workload.access_lifetime
    return TokenPolicy(
        issuer=ISSUER,
        audience="api",
        access_lifetime=lifetime,
        reuse_grace=min(10.0, lifetime / 2),
    )


def _feed(bench: BenchStore) -> Any:
    make = getattr(bench.store, "revocation_feed", None)
    if make is None:
        raise ConfigurationError(f"the {bench.spec.name} store has no revocation feed")
    return make()


Hook = Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Stretch:
    """Requests ``k0 .. k1 - 1`` (between two hooks): outcomes and failed indices."""

    k0: int
    k1: int
    outcomes: Outcomes
    first_failed: int | None
    last_failed: int | None


async def _run_mode(
    bench: BenchStore,
    mode: Mode,
    workload: Workload,
    clock: FrozenClock,
    *,
    concurrency: int,
    progress: Progress,
    label: str,
    hooks: dict[int, Hook] | None = None,
) -> tuple[ModeResult, list[Stretch]]:
    """Log in, run every request, and measure; ``hooks`` run before given request indices.

    Returns the result and, for each stretch of requests between two hooks, its
    outcome counts and its first and last failed request index.
    """
    start = math.floor(clock.now()) + 60.0
    clock.set(start)
    total = workload.total
    hooks = dict(hooks or {})
    for point in mode.probe_points(total):
        hooks.setdefault(point, _probe_hook(mode, point))
    cuts = sorted(k for k in hooks if 0 < k < total)
    stretches = list(zip([0, *cuts], [*cuts, total], strict=True))
    counts = [[0, 0, 0] for _ in stretches]
    failures: list[tuple[int | None, int | None]] = []
    before = bench.operations
    await mode.begin()
    try:
        await mode.login(workload.users)
        driver = _driver(workload, clock, start, concurrency, progress)
        progress.start(label, total)
        cpu = time.process_time()
        wall = time.perf_counter()
        for index, (k0, k1) in enumerate(stretches):
            hook = hooks.get(k0)
            if hook is not None:
                await hook()
            driver.first_failed = driver.last_failed = None
            await driver.run(mode, k0, k1, counts[index], done=k0)
            failures.append((driver.first_failed, driver.last_failed))
        wall = time.perf_counter() - wall
        cpu = time.process_time() - cpu
        progress.update(total)
    finally:
        await mode.end()
    operations = StoreOperations(
        total=bench.operations - before,
        logins=mode.logins,
        lookups=mode.lookups,
        refreshes=mode.refreshes,
        revocations=mode.revocations,
    )
    summed = [sum(stretch[i] for stretch in counts) for i in range(3)]
    result = ModeResult(
        mode=mode.key,
        label=mode.label,
        requests=total,
        outcomes=Outcomes.from_counts(summed),
        operations=operations,
        wall_seconds=wall,
        cpu_seconds=cpu,
        latencies=driver.samples,
        credential_bytes=mode.credential_bytes,
        refresh_failures=mode.refresh_failures,
        revocation_delays=list(mode.delays),
        notes=mode.notes(),
    )
    progress.finish(
        f"{result.requests_per_second:,.0f} req/s, {operations.total:,} store operations"
    )
    return result, [
        Stretch(k0, k1, Outcomes.from_counts(counted), first, last)
        for (k0, k1), counted, (first, last) in zip(stretches, counts, failures, strict=True)
    ]


def _then(first: Hook, second: Hook) -> Hook:
    async def hook() -> None:
        await first()
        await second()

    return hook


def _probe_hook(mode: Mode, point: int) -> Hook:
    async def hook() -> None:
        mode.probe(point)

    return hook


def _driver(
    workload: Workload, clock: FrozenClock, start: float, concurrency: int, progress: Progress
) -> Any:
    from tokenward.bench._modes import Driver
    from tokenward.bench._stats import LATENCY_SAMPLES

    return Driver(
        workload,
        clock,
        start,
        concurrency=concurrency,
        stride=sample_every(workload.total, LATENCY_SAMPLES),
        progress=progress,
    )


def _modes(
    bench: BenchStore, service: TokenService, clock: FrozenClock, users: int, probes: int
) -> list[Callable[[], Mode]]:
    return [
        lambda: SessionMode(bench.store, clock),
        lambda: JwtMode(service, clock, users=users),
        lambda: JwtFeedMode(service, clock, _feed(bench), users=users, probes=probes),
    ]


async def run_backend(
    spec: BackendSpec, config: BenchConfig, progress: Progress, clock: FrozenClock | None = None
) -> BackendResult:
    """The three modes on one backend (a fresh namespace, deleted afterwards)."""
    workload = config.workload
    clock = clock or FrozenClock(float(int(time.time())))
    bench = await open_bench_store(spec)
    result = BackendResult(spec.name, bench.display)
    try:
        service = await TokenService.create(bench.store, _policy(workload), clock=clock)
        for make in _modes(bench, service, clock, workload.users, config.probes):
            mode = make()
            outcome, _ = await _run_mode(
                bench,
                mode,
                workload,
                clock,
                concurrency=config.concurrency,
                progress=progress,
                label=f"{spec.name}: {mode.label}",
            )
            result.modes.append(outcome)
    finally:
        await bench.close()
    return result


async def run_outage(
    spec: BackendSpec, config: BenchConfig, progress: Progress, result: BackendResult
) -> None:
    """The outage case on its own store: down from 40% to 70% of the period, then back."""
    workload = config.outage_workload()
    result.outage_workload = workload
    if spec.name == "memory":
        result.outage_note = "the memory store lives in this process and cannot be stopped"
        return
    down, up = (workload.index_at(f) for f in OUTAGE_WINDOW)
    if not 0 < down < up < workload.total:
        result.outage_note = "the workload is too small for an outage window"
        return
    clock = FrozenClock(float(int(time.time())))
    bench = await open_bench_store(spec, stoppable=True)
    try:
        service = await TokenService.create(bench.store, _policy(workload), clock=clock)
        for make in _modes(bench, service, clock, workload.users, 0):
            mode = make()
            hooks: dict[int, Hook] = {
                down: _then(bench.stop, mode.store_down),
                up: _then(bench.start, mode.store_up),
            }
            outcome, stretches = await _run_mode(
                bench,
                mode,
                workload,
                clock,
                concurrency=config.concurrency,
                progress=progress,
                label=f"{spec.name}: outage, {mode.label}",
                hooks=hooks,
            )
            await bench.start()
            phases = _phases(stretches, down, up)
            notes: dict[str, Any] = {}
            if isinstance(mode, JwtFeedMode):
                notes = dict(outcome.notes)
            if outcome.refresh_failures:
                notes["refresh_failures"] = outcome.refresh_failures
            result.outage.append(
                OutageResult(
                    mode=mode.key,
                    label=mode.label,
                    before=phases[0],
                    during=phases[1],
                    after=phases[2],
                    operations=outcome.operations.total,
                    first_failed_minute=_minute(workload, _first(stretches)),
                    last_failed_minute=_minute(workload, _last(stretches)),
                    notes=notes,
                )
            )
    finally:
        await bench.close()


def _phases(stretches: list[Stretch], down: int, up: int) -> list[Outcomes]:
    """Outcomes before the outage, during it, and after the store came back."""
    phases = [Outcomes(), Outcomes(), Outcomes()]
    for stretch in stretches:
        phase = phases[0 if stretch.k0 < down else 1 if stretch.k0 < up else 2]
        phase.served += stretch.outcomes.served
        phase.refused += stretch.outcomes.refused
        phase.failed += stretch.outcomes.failed
    return phases


def _first(stretches: list[Stretch]) -> int | None:
    found = [s.first_failed for s in stretches if s.first_failed is not None]
    return min(found) if found else None


def _last(stretches: list[Stretch]) -> int | None:
    found = [s.last_failed for s in stretches if s.last_failed is not None]
    return max(found) if found else None


def _minute(workload: Workload, k: int | None) -> float | None:
    return None if k is None else workload.time_of(k) / 60


async def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchReport:
    """Run everything ``config`` asks for and return the report."""
    progress = progress or Progress(enabled=config.progress)
    report = BenchReport(config)
    for spec in config.backends:
        if config.real:
            from tokenward.bench._real import run_real

            result = BackendResult(spec.name, "")
            result.real = await run_real(spec, config, progress)
            result.display = str(result.real.get("url", ""))
        else:
            result = await run_backend(spec, config, progress)
            if config.outage:
                await run_outage(spec, config, progress, result)
        report.backends.append(result)
    report.finished_at = time.time()
    return report
