"""``tokenward bench`` end to end, in-process: table, JSON, chart, errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tokenward.cli import main

SMALL_ARGS = ["--users", "10", "--requests", "100", "--revocations", "1", "--quiet"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(["bench", *argv])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_bench_writes_the_table_and_the_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "bench.json"
    status, out, err = run(capsys, *SMALL_ARGS, "--json", str(path))
    assert status == 0, err
    # The table: one row per mode, the headline, and the outage case.
    for text in ("server sessions", "JWT + revocation feed", "store ops", "outage", "recovered"):
        assert text in out
    assert "Traceback" not in err
    data = json.loads(path.read_text())
    assert data["workload"]["total_requests"] == 1000
    (backend,) = data["backends"]
    assert backend["store"] == "sqlite"
    modes = {mode["mode"]: mode for mode in backend["modes"]}
    assert modes["sessions"]["store_operations"]["total"] == 10 + 1000
    assert modes["sessions"]["store_operations"]["session_lookups"] == 1000
    assert modes["jwt"]["store_operations"]["total"] == 10 + 10
    assert modes["jwt"]["store_operations"]["refreshes"] == 10
    assert modes["jwt_feed"]["revocation_delay"]["refused"] == 1
    for mode in modes.values():
        assert mode["outcomes"] == {"served": 1000, "refused": 0, "failed": 0}
        assert mode["requests_per_second"] > 0
        assert mode["latency"]["p50_us"] > 0
        assert mode["cpu_us_per_request"] > 0
    assert modes["sessions"]["credential_bytes_per_request"] == 43
    outage = {mode["mode"]: mode for mode in backend["outage"]["modes"]}
    assert outage["sessions"]["during"]["served"] == 0
    assert outage["jwt"]["during"]["served"] > 0
    assert all(mode["recovered"] for mode in outage.values())
    assert data["chart"] is None


def test_bench_json_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *SMALL_ARGS, "--no-outage", "--store", "memory", "--json", "-")
    assert status == 0
    data = json.loads(out)
    (backend,) = data["backends"]
    assert backend["store"] == "memory"
    assert "outage" not in backend


@pytest.mark.skipif(
    importlib.util.find_spec("matplotlib") is None,
    reason="matplotlib is not installed (the plot extra)",
)
def test_bench_writes_the_chart(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    chart = tmp_path / "bench.png"
    path = tmp_path / "bench.json"
    status, _, err = run(
        capsys,
        *SMALL_ARGS,
        "--no-outage",
        "--store",
        "memory",
        "--chart",
        str(chart),
        "--json",
        str(path),
    )
    assert status == 0, err
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads(path.read_text())["chart"] == str(chart)


def test_without_matplotlib_the_chart_is_skipped_with_a_note(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # makes the import fail
    chart = tmp_path / "bench.png"
    status, out, err = run(
        capsys, *SMALL_ARGS, "--no-outage", "--store", "memory", "--chart", str(chart)
    )
    assert status == 0
    assert "server sessions" in out
    assert "matplotlib is not installed" in err
    assert not chart.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["--users", "0"],
        ["--requests", "x"],
        ["--minutes", "-1"],
        ["--store", "mongodb"],
        ["--seconds", "0"],
        ["--chart", "-"],
    ],
)
def test_bad_options_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    status, _, err = run(capsys, *argv)
    assert status == 2
    assert err.startswith("error: usage_error:")


def test_an_unreachable_store_exits_3(capsys: pytest.CaptureFixture[str]) -> None:
    # Port 9 (discard) on loopback: nothing listens there.
    status, _, err = run(
        capsys, *SMALL_ARGS, "--store", "redis", "--redis-url", "redis://127.0.0.1:9/0"
    )
    assert status == 3
    assert "store_unavailable" in err


@pytest.mark.parametrize("store", ["redis", "postgres"])
def test_bench_on_networked_stores(
    capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest, store: str
) -> None:
    if store == "redis":
        where = ["--redis-url", request.getfixturevalue("redis_url")]
    else:
        where = ["--postgres-dsn", request.getfixturevalue("postgres_dsn")]
    status, out, err = run(
        capsys, *SMALL_ARGS, "--no-outage", "--store", store, *where, "--json", "-"
    )
    assert status == 0, err
    (backend,) = json.loads(out)["backends"]
    modes = {mode["mode"]: mode for mode in backend["modes"]}
    assert modes["sessions"]["store_operations"]["total"] == 1010
    assert modes["jwt"]["store_operations"]["total"] == 20


def test_real_mode_drives_a_server_over_loopback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    pytest.importorskip("uvicorn")
    path = tmp_path / "real.json"
    status, out, err = run(
        capsys, "--real", "--seconds", "1", "--concurrency", "2", "--quiet", "--json", str(path)
    )
    assert status == 0, err
    assert "real server over loopback" in out
    (backend,) = json.loads(path.read_text())["backends"]
    sessions, jwt = backend["real"]["modes"]
    assert sessions["mode"] == "sessions"
    assert jwt["mode"] == "jwt"
    for mode in (sessions, jwt):
        assert mode["requests"] > 0
        assert mode["failed"] == 0
    # One store read per session request (the server's housekeeping polls add a few);
    # none per JWT request.
    assert sessions["store_operations"] >= sessions["requests"]
    assert jwt["store_operations"] < sessions["store_operations"]
    assert jwt["credential_bytes_per_request"] > sessions["credential_bytes_per_request"] == 43
