"""Smoke test for benchmarks/revocation.py: a quick run must measure every reachable feed.

It does not judge the figures (a quick run is short and this machine is shared); it
keeps the benchmark working as the feeds, the follower and the verifier change.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "revocation.py"

_NUMBER = r"-?\d+\.\d+"
_ROW = rf"^{{name}}\s+(\d+)(?:\s+{_NUMBER}){{{{5}}}}\s+(\d+)$"


def _up(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_quick_run_measures_each_reachable_feed(tmp_path: Path) -> None:
    out_json = tmp_path / "revocation.json"
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our script
        [sys.executable, str(SCRIPT), "--quick", "--count", "5", "--json", str(out_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "clock: time.monotonic()" in out
    expected = {"sqlite": r"sqlite \(0\.05 s\)"}
    if _up(6379):
        expected["redis"] = "redis"
    if _up(5432):
        expected["postgres"] = "postgres"
    for feed, name in expected.items():
        row = re.search(_ROW.format(name=name), out, re.MULTILINE)
        assert row is not None, out
        assert row.group(1) == "5", out  # five timed revocations
        assert row.group(2) == "0", out  # and no feed disconnection
        assert re.search(rf"^\s+(PASS|FAIL)\s+{feed} p99 {_NUMBER} ms < ", out, re.MULTILINE)
    report = json.loads(out_json.read_text())
    assert {r["feed"] for r in report["results"]} == set(expected)
    assert all(len(r["delays"]) == 5 for r in report["results"])
