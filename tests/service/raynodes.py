"""A private Ray cluster of local processes: a head and extra raylets, stopped by PID.

``ray start --block`` runs each node in the foreground under its own temporary directory
(``--temp-dir``, so nothing is written to ``/tmp/ray``) with token authentication and the
token in the environment (``RAY_AUTH_TOKEN``, so ``~/.ray/auth_token`` is never read or
written). Every port is a free one chosen here. The address nodes and drivers use is the
one the head wrote to ``<temp dir>/ray_current_cluster``: Ray 2.60 replaces a loopback
address with the machine's own, so the test never assumes ``127.0.0.1``.

Stopping is by PID only: the ``ray start`` processes, their descendants (``/proc`` parent
links), and any process whose command line names this cluster's temporary directory (a
worker orphaned by a killed raylet). ``ray stop`` is never used: it stops every Ray
process on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

RAY = str(Path(sys.executable).with_name("ray"))
# Fast failure detection: a killed raylet is declared dead within seconds.
FAST_HEALTH = {
    "RAY_health_check_initial_delay_ms": "1000",
    "RAY_health_check_period_ms": "1000",
    "RAY_health_check_timeout_ms": "1000",
    "RAY_health_check_failure_threshold": "3",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return int(s.getsockname()[1])


def _proc_table() -> dict[int, tuple[int, str]]:
    """``pid -> (ppid, command line)`` of every visible process."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError, ValueError, IndexError):
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            table[int(entry.name)] = (ppid, cmd)
    return table


def descendants(pid: int, table: Mapping[int, tuple[int, str]] | None = None) -> list[int]:
    """Every live descendant of ``pid``."""
    table = table if table is not None else _proc_table()
    out, frontier = [], [pid]
    while frontier:
        parent = frontier.pop()
        kids = [p for p, (pp, _) in table.items() if pp == parent]
        out += kids
        frontier += kids
    return out


class RayCluster:
    """A head node plus extra raylets on this machine (see the module docstring).

    Args:
        token: The cluster's authentication token.
        env: Extra environment of every node (and so of every Ray worker process).
    """

    def __init__(self, token: str, env: Mapping[str, str] | None = None) -> None:
        self.token = token
        self.temp = Path(tempfile.mkdtemp(prefix="vrc-", dir="/tmp"))  # short: socket paths
        self.env = {
            **os.environ,
            **FAST_HEALTH,
            "RAY_AUTH_MODE": "token",
            "RAY_AUTH_TOKEN": token,
            "RAY_USAGE_STATS_ENABLED": "0",
            **(env or {}),
        }
        self.nodes: list[subprocess.Popen[bytes]] = []
        self.address = ""

    def _start(self, args: list[str], name: str) -> subprocess.Popen[bytes]:
        ports = [
            "--node-manager-port", str(_free_port()),
            "--object-manager-port", str(_free_port()),
            "--dashboard-agent-listen-port", str(_free_port()),
            "--dashboard-agent-grpc-port", str(_free_port()),
            "--metrics-export-port", str(_free_port()),
            "--runtime-env-agent-port", str(_free_port()),
        ]  # fmt: skip
        log = (self.temp / f"{name}.log").open("wb")
        proc = subprocess.Popen(
            [RAY, "start", *args, *ports, "--temp-dir", str(self.temp), "--block",
             "--disable-usage-stats"],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=self.env.get("PWD"),
            start_new_session=True,
        )  # fmt: skip
        log.close()
        self.nodes.append(proc)
        return proc

    def start_head(self, num_cpus: int = 1, timeout: float = 90.0) -> str:
        """Start the head; return the cluster's address (``ip:port``).

        Raises:
            AssertionError: The head exited or wrote no address in time.
        """
        port = _free_port()
        proc = self._start(
            ["--head", "--port", str(port), "--num-cpus", str(num_cpus), "--num-gpus", "0",
             "--include-dashboard", "false"],
            "head",
        )  # fmt: skip
        marker = self.temp / "ray_current_cluster"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"the Ray head exited {proc.returncode}:\n{self.log('head')}")
            if marker.exists() and marker.read_text().strip():
                self.address = marker.read_text().strip()
                return self.address
            time.sleep(0.2)
        raise AssertionError(f"the Ray head wrote no address in {timeout:.0f} s")

    def add_node(
        self, name: str, num_cpus: int = 1, resources: Mapping[str, float] | None = None
    ) -> subprocess.Popen[bytes]:
        """Start one more raylet joining the head (it registers asynchronously)."""
        args = ["--address", self.address, "--num-cpus", str(num_cpus), "--num-gpus", "0"]
        if resources:
            args += ["--resources", json.dumps(dict(resources))]
        return self._start(args, name)

    def log(self, name: str) -> str:
        """The tail of a node's ``ray start`` output."""
        path = self.temp / f"{name}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def raylet_pid(self, node: subprocess.Popen[bytes]) -> int:
        """The PID of the raylet a ``ray start`` process runs.

        Raises:
            LookupError: It runs none (yet).
        """
        table = _proc_table()
        for pid in descendants(node.pid, table):
            if table[pid][1].split(" ", 1)[0].endswith("/raylet"):
                return pid
        raise LookupError(f"no raylet under ray start {node.pid}")

    def pids(self) -> list[int]:
        """Every live process of this cluster (see the module docstring)."""
        table = _proc_table()
        found = {n.pid for n in self.nodes if n.poll() is None}
        for n in self.nodes:
            found.update(descendants(n.pid, table))
        found.update(p for p, (_, cmd) in table.items() if str(self.temp) in cmd)
        found.discard(os.getpid())
        return sorted(found)

    def stop(self, grace_s: float = 10.0) -> list[int]:
        """SIGTERM every process of the cluster, SIGKILL what is left; return the stragglers.

        The returned list is empty when everything is gone; the temporary directory is
        then removed.
        """
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in self.pids():
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, sig)
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and self.pids():
                for n in self.nodes:
                    n.poll()  # reap our own children
                time.sleep(0.2)
        for n in self.nodes:
            with contextlib.suppress(subprocess.TimeoutExpired):
                n.wait(5)
        left = self.pids()
        if not left:
            shutil.rmtree(self.temp, ignore_errors=True)
        return left
