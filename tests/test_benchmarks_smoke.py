"""Smoke test for benchmarks/codec.py: a quick HS256 run must work and print its tables.

This does not judge performance (the quick run is far too short, and CI machines are
noisy); it only keeps the benchmark script from rotting as the codec and peers change.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "codec.py"

# A table row: implementation, median, p25..p75, ratio to floor, paired ratio.
_ROW = r"^\s+{name}\s+\d+\.\d+\s+\d+\.\d+\.\.\d+\.\d+\s+\d+\.\d+x\s+\d+\.\d+x"


def test_quick_hs256_run_prints_tables_and_targets(tmp_path: Path) -> None:
    out_json = tmp_path / "bench.json"
    result = subprocess.run(  # noqa: S603 - fixed argv: this interpreter, our script
        [sys.executable, str(SCRIPT), "--quick", "--algs", "HS256", "--json", str(out_json)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    for header in ("HS256 sign", "HS256 verify"):
        assert re.search(rf"^{header}\b", out, re.MULTILINE), out
    for name in ("floor", "tokenward"):
        assert re.search(_ROW.format(name=re.escape(name)), out, re.MULTILINE), out
    # The tokenward row carries the fastest-peer ratio; the targets end in PASS/FAIL lines.
    assert re.search(r"fastest peer \(\S+\) / tokenward = \d+\.\d+x", out), out
    assert re.search(
        r"^\s+(PASS|FAIL)\s+HS256 verify, tokenward / floor \[wall\]: ", out, re.MULTILINE
    )
    assert out_json.is_file()
