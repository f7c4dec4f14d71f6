"""A real Redis Cluster for the tests: three primaries on loopback, started and stopped here.

:func:`start` runs three ``redis-server --cluster-enabled yes`` processes on free ports
(each also needs its cluster bus port, ``port + 10000``), joins them with ``redis-cli
--cluster create`` (no replicas), and waits until every node reports ``cluster_state:ok``
with all 16384 slots assigned and every other node known. Nothing is persisted: no RDB,
no AOF; the node configuration files live in a directory the caller owns.
"""

from __future__ import annotations

import contextlib
import functools
import random
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from redis import Redis
from redis.crc import key_slot
from redis.exceptions import RedisError

__all__ = ["NODES", "LocalCluster", "start"]

NODES = 3
_BUS_OFFSET = 10_000  # Redis Cluster's bus listens on port + 10000.
_READY_TIMEOUT = 30.0  # seconds; a healthy cluster is ready in well under one


def _free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(count: int) -> list[int]:
    """``count`` ports whose cluster bus port is free too (both checked on loopback)."""
    chosen: list[int] = []
    candidates = list(range(21_000, 29_000))
    random.shuffle(candidates)  # Parallel runs on one host should not all pick alike.
    for port in candidates:
        if _free(port) and _free(port + _BUS_OFFSET):
            chosen.append(port)
            if len(chosen) == count:
                return chosen
    raise RuntimeError("no free port pairs for a Redis Cluster on 127.0.0.1")


@dataclass
class LocalCluster:
    """The running cluster: its ports, its processes, and a URL for the store."""

    ports: list[int]
    directory: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    slots: list[tuple[int, int, int]] = field(default_factory=list)
    """``(first slot, last slot, port of its primary)``, as the cluster assigned them."""

    @property
    def url(self) -> str:
        """``redis+cluster://`` naming every node."""
        return "redis+cluster://" + ",".join(f"127.0.0.1:{port}" for port in self.ports)

    def owner(self, key: str) -> int:
        """The port of the primary serving ``key`` (the cluster has no replicas, and the
        tests move no slots, so this does not change while the cluster runs)."""
        slot = key_slot(key.encode())
        return next(port for first, last, port in self.slots if first <= slot <= last)

    def client(self, port: int) -> Redis:
        """A plain (synchronous) client of one node, for setup and checks."""
        return Redis(host="127.0.0.1", port=port, socket_timeout=5)

    def stop(self) -> None:
        """Stop the processes this cluster started (and only those)."""
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)

    def _info(self, port: int) -> dict[str, str]:
        with self.client(port) as client:
            text = client.execute_command("CLUSTER", "INFO")
        if isinstance(text, bytes):
            text = text.decode()
        return dict(line.split(":", 1) for line in str(text).splitlines() if ":" in line.strip())

    def _ready(self) -> bool:
        for port in self.ports:
            try:
                info = self._info(port)
            except (OSError, RedisError):  # Not up yet, or still loading.
                return False
            if (
                info.get("cluster_state") != "ok"
                or info.get("cluster_slots_ok") != "16384"
                or info.get("cluster_known_nodes") != str(len(self.ports))
            ):
                return False
        return True


def _wait(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the test Redis Cluster did not {what} in {_READY_TIMEOUT:g} s")
        time.sleep(0.05)  # Polling a real process, not passing test time.


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
        return True
    return False


def start(server: str, cli: str, directory: Path) -> LocalCluster:
    """Start a cluster with ``server`` and ``cli`` (paths of redis-server, redis-cli)."""
    cluster = LocalCluster(_ports(NODES), directory)
    try:
        for port in cluster.ports:
            argv = [
                server,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(directory / f"nodes-{port}.conf"),
                "--cluster-node-timeout", "5000",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(directory),
                "--logfile", str(directory / f"redis-{port}.log"),
            ]  # fmt: skip
            cluster.processes.append(
                subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603 - fixed argv, a binary found on PATH
            )
        for port in cluster.ports:
            _wait(functools.partial(_answers, port), f"listen on {port}")
        nodes = [f"127.0.0.1:{port}" for port in cluster.ports]
        subprocess.run(  # noqa: S603 - fixed argv, a binary found on PATH
            [cli, "--cluster", "create", *nodes, "--cluster-replicas", "0", "--cluster-yes"],
            check=True,
            capture_output=True,
            timeout=_READY_TIMEOUT,
        )
        _wait(cluster._ready, "reach cluster_state:ok on every node")
        with cluster.client(cluster.ports[0]) as client:
            ranges = client.execute_command("CLUSTER", "SLOTS")
        cluster.slots = [(int(r[0]), int(r[1]), int(r[2][1])) for r in ranges]
    except BaseException:
        cluster.stop()
        raise
    return cluster
