"""The report people read: a table per backend with a headline, and the PNG chart.

The JSON file (``--json``) holds every figure; the table picks the ones that make the
case at a glance: store operations, throughput, latency, CPU, credential size,
revocation delay, and what each mode did while the store was down.
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Sequence
from typing import Any

from tokenward.bench._runner import BackendResult, BenchReport
from tokenward.bench._stats import ModeResult

__all__ = ["ChartUnavailableError", "format_report", "write_chart"]


class ChartUnavailableError(Exception):
    """matplotlib is not installed: the chart cannot be drawn."""


def _n(value: float) -> str:
    return f"{value:,.0f}"


def _us(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:,.1f} ms"
    if value >= 100:
        return f"{value:,.0f} µs"
    return f"{value:.1f} µs"


def _ms(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 10:
        return f"{value:,.0f} ms"
    return f"{value:.1f} ms" if value >= 1 else f"{value:.2f} ms"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> list[str]:
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row, strict=True)]
    lines = []
    for index, row in enumerate([list(headers), *rows]):
        cells = []
        for column, (cell, width) in enumerate(zip(row, widths, strict=True)):
            # The first column (the mode) is text; the others are figures.
            cells.append(cell.ljust(width) if column == 0 else cell.rjust(width))
        lines.append(indent + "  ".join(cells).rstrip())
        if index == 0:
            lines.append(indent + "  ".join("-" * w for w in widths))
    return lines


def _delay(result: ModeResult) -> str:
    summary = result.delay_summary()
    if summary is None:
        return "-"
    if not summary["refused"]:
        return f"not refused ({summary['probes']} probes)"
    return (
        f"p50 {_ms(summary['p50_ms'])}, max {_ms(summary['max_ms'])}"
        f" ({summary['refused']}/{summary['probes']})"
    )


def _mode_rows(modes: Sequence[ModeResult]) -> list[list[str]]:
    rows = []
    for result in modes:
        latency = result.latency_summary()
        rows.append(
            [
                result.label,
                _n(result.operations.total),
                f"{result.operations_per_1000:,.2f}",
                _n(result.requests_per_second),
                _us(float(latency["p50_us"])),
                _us(float(latency["p99_us"])),
                _us(result.cpu_us_per_request),
                f"{result.credential_bytes_per_request:,.0f} B",
                _delay(result),
            ]
        )
    return rows


def _headline(modes: Sequence[ModeResult]) -> list[str]:
    by_key = {result.mode: result for result in modes}
    sessions, jwt = by_key.get("sessions"), by_key.get("jwt")
    if sessions is None or jwt is None:
        return []
    lines = []
    if jwt.operations.total:
        ratio = sessions.operations.total / jwt.operations.total
        lines.append(
            f"  JWT touched the store {_n(ratio)}x less than server sessions "
            f"({_n(jwt.operations.total)} against {_n(sessions.operations.total)} operations "
            f"for {_n(jwt.requests)} requests)"
        )
    if sessions.requests_per_second:
        speed = jwt.requests_per_second / sessions.requests_per_second
        lines.append(f"  and served {speed:,.1f}x the requests per second; in return:")
    lines.append(
        f"  credentials {_n(jwt.credential_bytes_per_request)} B against "
        f"{_n(sessions.credential_bytes_per_request)} B per request, CPU "
        f"{_us(jwt.cpu_us_per_request)} against {_us(sessions.cpu_us_per_request)} per request"
    )
    feed = by_key.get("jwt_feed")
    if feed is not None and feed.delay_summary():
        lines.append(f"  and a revocation takes {_delay(feed)} to be refused with the feed on")
    return lines


def _outage_lines(backend: BackendResult) -> list[str]:
    if backend.outage_note:
        return [f"  outage case skipped: {backend.outage_note}"]
    if not backend.outage or backend.outage_workload is None:
        return []
    down, up = backend.outage_minutes()
    w = backend.outage_workload
    lines = [
        f"  outage: the store is down from minute {down:.1f} to {up:.1f} of {w.minutes:g}"
        f" ({_n(w.users)} users x {_n(w.requests)} requests, served / failed)"
    ]
    rows = []
    for result in backend.outage:
        first = result.first_failed_minute
        rows.append(
            [
                result.label,
                f"{_n(result.before.served)} / {_n(result.before.failed)}",
                f"{_n(result.during.served)} / {_n(result.during.failed)}",
                f"{_n(result.after.served)} / {_n(result.after.failed)}",
                "-" if first is None else f"minute {first:.1f}",
                "yes" if result.after.failed == 0 and result.after.served else "no",
            ]
        )
    lines += _table(
        ["mode", "before", "during outage", "after", "first failure", "recovered"], rows
    )
    return lines


def _real_lines(real: dict[str, Any]) -> list[str]:
    rows = []
    for mode in real.get("modes", []):
        latency = mode["latency"]
        rows.append(
            [
                mode["label"],
                _n(mode["requests"]),
                _n(mode["store_operations"]),
                _n(mode["requests_per_second"]),
                _us(float(latency["p50_us"])),
                _us(float(latency["p99_us"])),
                _us(float(mode["server_cpu_us_per_request"])),
                f"{mode['credential_bytes_per_request']:,.0f} B",
                _n(mode["failed"]),
            ]
        )
    return [
        f"  real server over loopback: {real['seconds']:g} s per mode,"
        f" {real['concurrency']} requests in flight",
        *_table(
            [
                "mode",
                "requests",
                "store ops",
                "req/s",
                "p50",
                "p99",
                "server CPU/req",
                "credential",
                "failed",
            ],
            rows,
        ),
    ]


def format_report(report: BenchReport) -> str:
    """The whole report as text, for a terminal."""
    config = report.config
    w = config.workload
    lines = []
    if config.real:
        lines.append(f"tokenward bench --real: {config.seconds:g} s per mode")
    else:
        lines.append(
            f"tokenward bench: {_n(w.users)} users x {_n(w.requests)} requests"
            f" ({_n(w.total)}) over {w.minutes:g} simulated minutes,"
            f" {w.access_minutes:g}-minute access tokens, {config.concurrency} in flight"
        )
    for backend in report.backends:
        lines += ["", f"{backend.backend}  {backend.display}"]
        if backend.modes:
            lines += _table(
                [
                    "mode",
                    "store ops",
                    "per 1k req",
                    "req/s",
                    "p50",
                    "p99",
                    "CPU/req",
                    "credential",
                    "revocation delay",
                ],
                _mode_rows(backend.modes),
            )
            lines += ["", *_headline(backend.modes)]
        outage = _outage_lines(backend)
        if outage:
            lines += ["", *outage]
        if backend.real is not None:
            lines += _real_lines(backend.real)
    return "\n".join(lines) + "\n"


def _series(report: BenchReport) -> list[tuple[str, str, float, float]]:
    """(backend, mode label, store operations per 1,000 requests, requests/s)."""
    found = []
    for backend in report.backends:
        for result in backend.modes:
            found.append(
                (
                    backend.backend,
                    result.label,
                    result.operations_per_1000,
                    result.requests_per_second,
                )
            )
        if backend.real is not None:
            for mode in backend.real.get("modes", []):
                found.append(
                    (
                        backend.backend + " (real)",
                        mode["label"],
                        float(mode["store_operations_per_1000_requests"]),
                        float(mode["requests_per_second"]),
                    )
                )
    return found


def write_chart(report: BenchReport, path: str) -> None:
    """Draw store operations and throughput by mode and backend into a PNG at ``path``.

    matplotlib is imported here, only when a chart is asked for; without it this
    raises :class:`ChartUnavailableError`.
    """
    try:
        matplotlib = importlib.import_module("matplotlib")
    except ImportError:
        raise ChartUnavailableError("matplotlib is not installed") from None
    matplotlib.use("Agg")
    figure_module = importlib.import_module("matplotlib.figure")
    series = _series(report)
    backends = list(dict.fromkeys(item[0] for item in series))
    labels = list(dict.fromkeys(item[1] for item in series))
    values = {(b, label): (ops, rps) for b, label, ops, rps in series}
    figure = figure_module.Figure(figsize=(11, 4.6), layout="constrained")
    axes = figure.subplots(1, 2)
    width = 0.8 / max(1, len(labels))
    colours = ["#c0504d", "#4f81bd", "#9bbb59", "#8064a2"]
    for panel, (axis, title, unit) in enumerate(
        (
            (axes[0], "Store operations per 1,000 requests", "operations (log scale)"),
            (axes[1], "Throughput", "requests per second (log scale)"),
        )
    ):
        # Bars start a decade below the smallest one, so heights compare honestly; a
        # zero (JWT's store operations in a short real run) is drawn at that floor.
        shown = [value[panel] for value in values.values() if value[panel] > 0] or [1.0]
        floor = 10.0 ** math.floor(math.log10(min(shown)))
        for index, label in enumerate(labels):
            xs, heights, texts = [], [], []
            for position, backend in enumerate(backends):
                if (backend, label) in values:
                    value = values[(backend, label)][panel]
                    xs.append(position + (index - (len(labels) - 1) / 2) * width)
                    heights.append(max(value, floor))
                    texts.append(_short(value))
            bars = axis.bar(xs, heights, width, label=label, color=colours[index % len(colours)])
            axis.bar_label(bars, labels=texts, fontsize=7, padding=2)
        axis.set_yscale("log")
        axis.set_ylim(floor, max(shown) * 4)
        axis.set_title(title)
        axis.set_ylabel(unit)
        axis.set_xticks(range(len(backends)), backends)
        axis.grid(axis="y", alpha=0.3)
    axes[0].legend(fontsize=8, loc="upper right")
    w = report.config.workload
    if report.config.real:
        what = f"real server over loopback, {report.config.seconds:g} s per mode"
    else:
        what = (
            f"{w.users:,} users x {w.requests:,} requests, {w.minutes:g} simulated minutes,"
            f" {w.access_minutes:g}-minute access tokens"
        )
    figure.suptitle(f"tokenward bench: server sessions vs JWT ({what})", fontsize=10)
    figure.savefig(path, dpi=110)


def _short(value: float) -> str:
    if value <= 0:
        return "0"
    if value < 0.01:
        return f"{value:.1g}"
    if value >= 1e6:
        return f"{value / 1e6:.1f}M"
    if value >= 1e4:
        return f"{value / 1e3:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.2g}"
