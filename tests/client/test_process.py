"""The client against a real auth server process over TCP on a loopback port.

Real time, real sockets, real uvicorn (``serve_process.py``, one process for this
module). The async client logs in, keeps its tokens in a 0600 file, and after its
session is revoked (``POST /logout``), 20 concurrent requests are refused at once and
cause exactly one failed refresh and one new login. Then a sync client in another thread
carries on from the file alone and logs out. Last, the examples of ``docs/client.md``
run as written against the same process.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.server.conftest import PASSWORD
from tokenward.client import AsyncTokenwardAuth, FileTokenStorage, TokenwardAuth

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "client.md"
DOC_URL = "http://127.0.0.1:8000"
_BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)


@dataclass
class Process:
    """The running server process."""

    base: str


@pytest.fixture(scope="module")
def process() -> Iterator[Process]:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.client.serve_process"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    try:
        running = Process(f"http://127.0.0.1:{int(child.stdout.readline())}")
        with httpx.Client(base_url=running.base, timeout=10) as http:
            for _ in range(400):  # readiness: a bounded poll of the real process
                try:
                    if http.get("/.well-known/jwks.json").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.025)
            else:
                raise AssertionError("the server process did not become ready")
        yield running
    finally:
        child.send_signal(signal.SIGTERM)
        _, stderr = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGTERM, stderr.decode(errors="replace")
    # The lifespan ran to its end, and the log (JSON lines) never had the password.
    records = [json.loads(line) for line in stderr.decode().splitlines()]
    assert records[-1]["event"] == "tokenward auth server stopped"
    assert PASSWORD not in stderr.decode()


def _metric(text: str, sample: str) -> int:
    for line in text.splitlines():
        if line.startswith(sample + " "):
            return int(line.rsplit(" ", 1)[1])
    return 0


def _count(base: str, sample: str) -> int:
    with httpx.Client(base_url=base, timeout=10) as raw:
        return _metric(raw.get("/metrics").text, sample)


async def test_the_client_against_a_real_server_process(process: Process, tmp_path: Path) -> None:
    base, path = process.base, tmp_path / "tokens.json"
    token_url = f"{base}/oauth/token"
    logins = 'tokenward_logins_total{result="success"}'
    before = await asyncio.to_thread(_count, base, logins)
    auth = AsyncTokenwardAuth(
        token_url, client_id="web", username="ada", password=PASSWORD,
        storage=FileTokenStorage(path),
    )  # fmt: skip
    async with httpx.AsyncClient(base_url=base, auth=auth, timeout=10) as http:
        first = await http.get("/userinfo")
        assert first.status_code == 200
        assert first.json()["username"] == "ada"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert (await http.post("/logout")).status_code == 204
        responses = await asyncio.gather(*(http.get("/userinfo") for _ in range(20)))
    assert {r.status_code for r in responses} == {200}
    assert len({r.request.headers["Authorization"] for r in responses}) == 1
    # One request went 401 -> refresh refused (400) -> login; the others only 401.
    histories = sorted([x.status_code for x in r.history] for r in responses)
    assert histories == [[401]] * 19 + [[401, 400, 200]]

    def carry_on_from_the_file() -> httpx.Response:
        later = TokenwardAuth(token_url, client_id="web", storage=FileTokenStorage(path))
        with httpx.Client(base_url=base, auth=later, timeout=10) as sync_http:
            response = sync_http.get("/userinfo")
            later.logout(sync_http)
        return response

    carried = await asyncio.to_thread(carry_on_from_the_file)
    assert carried.status_code == 200
    assert carried.history == []  # no login, no refresh: the stored token was used
    assert not path.exists()
    assert await asyncio.to_thread(_count, base, logins) == before + 2


def test_the_documented_examples_run(process: Process, tmp_path: Path) -> None:
    examples = [block for block in _BLOCK.findall(DOC.read_text()) if DOC_URL in block]
    assert len(examples) == 2
    outputs = []
    for example in examples:
        result = subprocess.run(  # noqa: S603 - fixed examples from the repository's docs
            [sys.executable, "-c", example.replace(DOC_URL, process.base)],
            cwd=tmp_path,
            env={**os.environ, "HOME": str(tmp_path), "TOKENWARD_PASSWORD": PASSWORD},
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout)
    assert outputs == ["ada\n", "{200}\n"]
    token_file = tmp_path / ".config" / "example" / "tokens.json"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
