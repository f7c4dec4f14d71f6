"""Smoke tests for benchmarks/service.py and benchmarks/server.py in --quick mode.

They do not judge performance (a quick run is far too short and the machines are
noisy); they keep the scripts from rotting, and check the correctness lines the scripts
enforce: one store round trip per rotation on every backend that is up, no store I/O
for ``verify_access``, every server request answered, subprocesses and temporary files
cleaned up. Backends whose server is down are skipped by the script, with a note;
under ``TOKENWARD_REQUIRE_SERVICES=1`` (CI) a skipped backend fails the test instead.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SERVICE = ROOT / "benchmarks" / "service.py"
SERVER = ROOT / "benchmarks" / "server.py"
BACKENDS = ("memory", "sqlite", "redis", "postgres")


def _run(script: Path, out_json: Path, *extra: str) -> str:
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our script
        [sys.executable, str(script), "--quick", "--json", str(out_json), *extra],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_service_quick_run_counts_one_round_trip_per_refresh(tmp_path: Path) -> None:
    out_json = tmp_path / "service.json"
    out = _run(SERVICE, out_json)
    assert re.search(r"^Refresh: TokenService\.refresh", out, re.MULTILINE), out
    assert re.search(r"^\s+signature only = one ES256 verify \+ two ES256 signs", out, re.M), out
    up = []
    for backend in BACKENDS:
        if re.search(rf"^\s+{backend}\s+SKIPPED: ", out, re.MULTILINE):
            if os.environ.get("TOKENWARD_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{backend} was skipped and TOKENWARD_REQUIRE_SERVICES=1:\n{out}")
            continue
        up.append(backend)
        # A table row: name, refresh us, p25..p75, refresh/s, trips = 1.00.
        row = rf"^\s+{backend}\s+\d+\.\d\s+\d+\.\d\.\.\d+\.\d\s+\d+\s+1\.00\s"
        assert re.search(row, out, re.MULTILINE), out
        check = rf"^\s+PASS\s+{backend}: store round trips per refresh = 1\.000 "
        assert re.search(check, out, re.MULTILINE), out
    assert {"memory", "sqlite"} <= set(up), out  # in-process backends never skip
    for case in ("verify_access, cached", "verify_access, uncached"):
        assert re.search(rf"^\s+{case}\s+\d+\.\d+\s", out, re.MULTILINE), out
        assert re.search(rf"^\s+PASS\s+{case}: 0 store operations in \d+ calls", out, re.M)
    assert "FAIL" not in out, out
    for backend in up:
        assert re.search(rf"^cleanup {backend}: ", out, re.MULTILINE), out
    if "redis" in up:
        assert re.search(r"^cleanup redis: deleted every key .*\(0 left\)", out, re.M), out
    if "postgres" in up:
        assert re.search(r"^cleanup postgres: dropped schema twbench_", out, re.MULTILINE), out
    report = json.loads(out_json.read_text())
    assert [row["backend"] for row in report["refresh"]] == up
    assert all(row["store_round_trips_per_refresh"] == 1 for row in report["refresh"])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_server_quick_run_drives_every_scenario_and_cleans_up(tmp_path: Path) -> None:
    for module in ("starlette", "uvicorn"):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{module} is not installed (the server extra)")
    out_json = tmp_path / "server.json"
    out = _run(SERVER, out_json)
    assert re.search(r"^HTTP over loopback", out, re.MULTILINE), out
    for scenario in ("minimal", "userinfo", "refresh", "login"):
        # A row: scenario, connections, requests, req/s, p50, p99, server CPU us/req.
        row = rf"^\s+{scenario}\s+\d+\s+[1-9]\d*\s+\d+\s+\d+\.\d+\s+\d+\.\d+\s+\d+\s"
        assert re.search(row, out, re.MULTILINE), out
        assert re.search(rf"^\s+{scenario}: (server-bound|neither|WARNING)", out, re.M), out
    assert re.search(r"^Breakdown of a refresh", out, re.MULTILINE), out
    for part in ("minimal endpoint", "signature work", "one store round trip", "sum"):
        assert re.search(rf"^\s+{part}\b.*\s\d+$", out, re.MULTILINE), out
    target = r"^\s+(PASS|FAIL)\s+refresh server CPU / \(minimal \+ signature work \+ one store"
    assert re.search(target, out, re.MULTILINE), out
    for kind in ("tokenward", "minimal"):
        assert re.search(rf"^cleanup: {kind} server \(pid \d+\) stopped \(status 0\)", out, re.M)
    removed = re.search(r"^cleanup: removed (\S+)$", out, re.MULTILINE)
    assert removed, out
    assert not Path(removed.group(1)).exists()
    report = json.loads(out_json.read_text())
    assert {row["scenario"] for row in report["http"]} == {
        "minimal",
        "userinfo",
        "refresh",
        "login",
    }
    assert report["target"]["limit"] == 1.3
