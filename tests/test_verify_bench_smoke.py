"""Smoke test for benchmarks/verify.py: a quick run must measure every scenario and clean up.

It does not judge the figures (a quick run is far too short and this machine is shared):
it keeps the benchmark working as the middleware, the verifier and the deny list change,
and checks what the script counts, which is exact even in a short run: no store traffic
and no signature verification per request for tokenward with a reused token, one
signature verification per fresh token, one Redis ``GET`` per session lookup. The Redis
scenarios need ``redis-server`` on the PATH or Redis on 127.0.0.1:6379; without either
the script skips them (under ``TOKENWARD_REQUIRE_SERVICES=1``, as in CI, the test fails).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "verify.py"

_NUM = r"\d+(?:\.\d+)?"
# A table row: scenario, req/s, p50, p99, CPU us/req, its p25..p75, req/CPU-s, store ops/req
_ROW = rf"^\s+{{name}}\s+\d+\s+{_NUM}\s+{_NUM}\s+{_NUM}\s+\d+\.\.\d+\s+\d+\s+(?P<ops>{_NUM})\s"


def _redis_available() -> bool:
    if shutil.which("redis-server"):
        return True
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return True
    except OSError:
        return False


def test_quick_run_measures_every_scenario(tmp_path: Path) -> None:
    out_json = tmp_path / "verify.json"
    argv = [sys.executable, str(SCRIPT), "--quick", "--seconds", "0.4", "--json", str(out_json)]
    argv += ["--deny-sessions", "20000", "--revoked", "1000"]
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our script
        argv, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    with_redis = _redis_available()
    if not with_redis and os.environ.get("TOKENWARD_REQUIRE_SERVICES") == "1":
        pytest.fail("no Redis and TOKENWARD_REQUIRE_SERVICES=1")
    names = ["none", "hs256-reused", "hs256-fresh", "es256-reused", "es256-fresh"]
    if with_redis:
        names += ["redis-reused", "redis-fresh"]
    report = json.loads(out_json.read_text())
    # A private redis-server counts only our commands; a shared one counts everyone's.
    exact = with_redis and report["method"]["redis"]["private"]
    for name in names:
        row = re.search(_ROW.format(name=re.escape(name)), out, re.MULTILINE)
        assert row is not None, f"{name}:\n{out}"
        if exact:
            expected = "1.000" if name.startswith("redis") else "0.000"
            assert row.group("ops") == expected, f"{name}:\n{out}"
    assert re.search(r"^\s+(PASS|FAIL)\s+reused HS256 token: tokenward / no auth ", out, re.M)
    assert re.search(r"^\s+(PASS|FAIL)\s+fresh HS256 token: tokenward / no auth ", out, re.M)
    assert re.search(r"^\s+tracemalloc\s+\d+\.\d MiB", out, re.M), out
    assert re.search(r"^\s+rss\s+-?\d+\.\d MiB", out, re.M), out
    assert not re.search(r"^\s+FAIL\s+\S+: (Redis|session|signature)", out, re.M), out

    assert set(report["scenarios"]) == set(names)
    for check in report["checks"]:
        assert check["passed"], check
    scenarios = report["scenarios"]
    for name in ("hs256-fresh", "es256-fresh"):
        assert scenarios[name]["signature_verifications_per_request"] == 1.0
    assert {r["method"] for r in report["deny_set"]} == {"tracemalloc", "rss"}
    # The server (and a private Redis) stopped, and every key this run created is gone.
    cleanup = report["cleanup"]
    assert cleanup["server"].startswith("stopped"), cleanup
    for pid in report["processes"].values():
        if pid is not None:
            assert not Path(f"/proc/{pid}").exists(), cleanup
    if with_redis:
        assert cleanup["redis_keys_removed"] > 0, cleanup
        assert cleanup["redis_keys_left"] == 0, cleanup
