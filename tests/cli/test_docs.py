"""Replay every example in docs/cli.md, so that the documentation cannot go stale.

The ``sh`` blocks run in order in one shell, in an empty directory, with the installed
``tokenward`` first on ``PATH``. Every ``error:`` line the page shows in a ``text``
block must appear on that run's stderr.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"
_BLOCK = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    return [body for lang, body in _BLOCK.findall(DOC.read_text()) if lang == language]


def test_cli_doc_examples_run(tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    # The installation block builds a virtualenv; everything else runs as written.
    examples = [block for block in _blocks("sh") if "pip install" not in block]
    assert len(examples) >= 6
    script = "set -euo pipefail\n" + "\n".join(examples)
    bin_dir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(  # noqa: S603 - a fixed script from the repository's docs
        [bash, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    documented = [
        line
        for block in _blocks("text")
        for line in block.splitlines()
        if line.startswith("error: ") and "<code>" not in line
    ]
    assert documented
    for line in documented:
        assert line in result.stderr.splitlines()
    assert "exit status 1" in result.stdout
    assert "exit status 2" in result.stdout
    assert "accepted: {" in result.stdout
