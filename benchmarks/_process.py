"""Subprocesses the benchmarks start (servers, Redis): started, pinned, logged, stopped."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Child", "spawn"]


@dataclass
class Child:
    """A subprocess of ours, with its log file."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """Its process id."""
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of its output."""
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def stop(self, grace: float = 10.0) -> str:
        """SIGTERM, then SIGKILL after ``grace`` seconds; return how it ended."""
        if self.process.poll() is not None:
            return f"had exited with status {self.process.returncode}"
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
            return f"killed after {grace:g} s"
        return f"stopped (status {self.process.returncode})"


def spawn(name: str, argv: list[str], tmp: Path, cpu: int | None) -> Child:
    """Start ``argv`` in its own session (Ctrl-C reaches only us), pinned to ``cpu``.

    Its output goes to ``tmp/<name>.log``; it runs in ``tmp``.
    """
    log = tmp / f"{name}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(  # noqa: S603 - fixed argv built by the calling script
            argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=tmp,
        )
    if cpu is not None:
        with contextlib.suppress(OSError):  # it may have exited already; checked later
            os.sched_setaffinity(process.pid, {cpu})
    return Child(name, process, log)
