"""``tokenward bench``: server sessions against JWT on the same store, measured.

The work is in :mod:`tokenward.bench`, imported when the command runs so that the
other commands start without it. The table goes to stdout, the progress bar and notes
to stderr; ``--json`` writes every figure to a file (``-`` for stdout, instead of the
table) and ``--chart`` a PNG when matplotlib is installed.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from typing import TYPE_CHECKING

from tokenward.cli._commands import EXIT_OK, Subparsers, add_command
from tokenward.cli._io import UsageError, note

if TYPE_CHECKING:
    from tokenward.bench import BenchConfig

__all__ = ["register"]

_STORES = ("sqlite", "redis", "postgres", "memory", "all")
_ALL = ("sqlite", "redis", "postgres")


def _positive_int(text: str) -> int:
    try:
        value = int(text.replace("_", "").replace(",", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return value


def _minutes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of minutes {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError("must be a positive number of minutes")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid number of seconds {text!r}") from None
    if not math.isfinite(value) or not 0 < value <= 3600:
        raise argparse.ArgumentTypeError("must be between 0 and 3600 seconds")
    return value


def register(commands: Subparsers) -> None:
    """Add the ``bench`` command to the ``tokenward`` parser."""
    parser = add_command(
        commands,
        "bench",
        _bench,
        summary="measure server sessions against JWT on a store",
        description=(
            "Run one workload three ways on the same store: server sessions (a session\n"
            "id looked up in the store on every request), JWT (verified with no store\n"
            "I/O, refreshed when expired) and JWT with the revocation feed on; then the\n"
            "outage case (the store stops mid-run and comes back). Reports store\n"
            "operations, requests/s, p50/p99 latency, CPU time and credential bytes per\n"
            "request, and the revocation delay. Time is simulated: 30 minutes pass in\n"
            "as long as the requests take. The defaults make 10 million requests per\n"
            "mode; the session mode costs one store round trip each, so on SQLite the\n"
            "run takes tens of minutes and on Redis or PostgreSQL longer: scale it with\n"
            "--users and --requests (see docs/bench.md for measured run times).\n"
            "--real instead drives a real auth server over loopback for --seconds."
        ),
        examples=(
            "  tokenward bench --users 100 --requests 1000\n"
            "  tokenward bench --store all --requests 1000 --json bench.json --chart bench.png\n"
            "  tokenward bench --store redis --redis-url redis://127.0.0.1:6379/0\n"
            "  tokenward bench --real --seconds 10"
        ),
    )
    parser.add_argument(
        "--store",
        choices=_STORES,
        default="sqlite",
        help="the backend; 'all' is sqlite, redis and postgres (default: sqlite, a temp file)",
    )
    parser.add_argument(
        "--redis-url", metavar="URL", help="Redis server (default redis://127.0.0.1:6379/0)"
    )
    parser.add_argument(
        "--postgres-dsn",
        metavar="DSN",
        help="PostgreSQL server (default postgresql://postgres@127.0.0.1:5432/postgres)",
    )
    parser.add_argument(
        "--users", type=_positive_int, default=1000, metavar="N", help="users (default 1000)"
    )
    parser.add_argument(
        "--requests",
        type=_positive_int,
        default=10_000,
        metavar="N",
        help="requests per user (default 10000)",
    )
    parser.add_argument(
        "--minutes", type=_minutes, default=30.0, metavar="M", help="simulated period (30)"
    )
    parser.add_argument(
        "--access-minutes",
        type=_minutes,
        default=15.0,
        metavar="M",
        help="access-token lifetime (default 15)",
    )
    parser.add_argument(
        "--concurrency",
        type=_positive_int,
        default=8,
        metavar="N",
        help="requests in flight at once (default 8)",
    )
    parser.add_argument(
        "--revocations",
        type=_count,
        default=5,
        metavar="N",
        help="revocation probes in the feed mode (default 5)",
    )
    parser.add_argument("--no-outage", action="store_true", help="skip the outage case")
    parser.add_argument(
        "--real",
        action="store_true",
        help="drive a real auth server over loopback instead of the simulation",
    )
    parser.add_argument(
        "--seconds",
        type=_seconds,
        default=10.0,
        metavar="S",
        help="wall time per mode with --real (default 10)",
    )
    parser.add_argument(
        "--json", metavar="FILE", help="write every figure as JSON to FILE ('-': stdout)"
    )
    parser.add_argument(
        "--chart", metavar="FILE", help="write a PNG chart (needs matplotlib: the plot extra)"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _config(args: argparse.Namespace) -> BenchConfig:
    from tokenward.bench import BackendSpec, BenchConfig, Workload

    names = _ALL if args.store == "all" else (args.store,)
    urls = {"redis": args.redis_url or "", "postgres": args.postgres_dsn or ""}
    return BenchConfig(
        backends=tuple(BackendSpec(name, urls.get(name, "")) for name in names),
        workload=Workload(
            users=args.users,
            requests=args.requests,
            minutes=args.minutes,
            access_minutes=args.access_minutes,
        ),
        concurrency=args.concurrency,
        probes=args.revocations,
        outage=not args.no_outage,
        real=args.real,
        seconds=args.seconds,
        progress=not args.quiet,
    )


def _bench(args: argparse.Namespace) -> int:
    import asyncio

    from tokenward.bench import run_bench
    from tokenward.bench._report import ChartUnavailableError, format_report, write_chart

    if args.chart == "-":
        raise UsageError("--chart needs a file name")
    config = _config(args)
    # The service layer's audit events (logins, revocations), the revocation follower's
    # warnings and the store clients' retries during the outage case are expected:
    # they are not the bench's output, which is the report.
    quiet = logging.NullHandler()
    loggers = [logging.getLogger(name) for name in ("tokenward", "asyncpg", "redis")]
    saved = [logger.propagate for logger in loggers]
    for logger in loggers:
        logger.addHandler(quiet)
        logger.propagate = False
    try:
        report = asyncio.run(run_bench(config))
    finally:
        for logger, propagate in zip(loggers, saved, strict=True):
            logger.removeHandler(quiet)
            logger.propagate = propagate
    if args.chart:
        try:
            write_chart(report, args.chart)
        except ChartUnavailableError:
            note(
                "chart not written: matplotlib is not installed "
                "(install it, or tokenward with the plot extra)"
            )
        except OSError as exc:
            raise UsageError(f"cannot write the chart {args.chart!r}: {exc.strerror}") from None
        else:
            report.chart = args.chart
            note(f"chart written to {args.chart}")
    data = json.dumps(report.to_json(), indent=2)
    if args.json == "-":
        sys.stdout.write(data + "\n")
        return EXIT_OK
    sys.stdout.write(format_report(report))
    sys.stdout.flush()
    if args.json:
        try:
            with open(args.json, "w", encoding="utf-8") as stream:
                stream.write(data + "\n")
        except OSError as exc:
            raise UsageError(f"cannot write {args.json!r}: {exc.strerror}") from None
        note(f"figures written to {args.json}")
    return EXIT_OK
