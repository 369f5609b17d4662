"""A private PostgreSQL cluster for tests that stop and start the server.

``initdb`` and ``pg_ctl`` from the installed server binaries (``/usr/lib/postgresql/*/bin``)
create a cluster in a temporary directory, on a free port, with trust authentication, never
touching the shared server on 5432. ``initdb`` refuses to run as root, so as root the
cluster belongs to the ``postgres`` user (``runuser -u postgres --``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def server_bin() -> Path | None:
    """The newest installed server's ``bin`` directory, or ``None``."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=_version_key)
    return Path(found[-1]).parent if found else None


def _version_key(path: str) -> tuple[int, ...]:
    part = Path(path).parent.parent.name
    return tuple(int(p) for p in part.split(".") if p.isdigit())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgCluster:
    """One throw-away PostgreSQL cluster: :meth:`start`, :meth:`stop`, :meth:`destroy`.

    Args:
        bin_dir: The server binaries (default: :func:`server_bin`).

    Raises:
        RuntimeError: No server binaries, or no unprivileged user to run them as root.
    """

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin = bin_dir or server_bin()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql")
        self.port = _free_port()
        self.root = Path(tempfile.mkdtemp(prefix="vradam-pg-"))
        self.data = self.root / "data"
        self.user: str | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError as e:
                raise RuntimeError("running as root needs a 'postgres' user for initdb") from e
            self.user = "postgres"
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "--no-sync")

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``postgres`` database."""
        return self.db_url("postgres")

    def db_url(self, name: str) -> str:
        """SQLAlchemy URL of database ``name`` on this cluster."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def _run(self, tool: str, *args: str, timeout: float = 120.0) -> None:
        cmd = [str(self.bin / tool), *args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr or done.stdout}")

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.root / "log"), "-o", options,
            "-w", "-t", "60", "start",
        )  # fmt: skip
        self.wait_ready()

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until the server accepts connections.

        Raises:
            TimeoutError: It did not within ``timeout`` seconds.
        """
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(
                    f"postgresql://postgres@127.0.0.1:{self.port}/postgres", connect_timeout=2
                ):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"PostgreSQL on port {self.port} is not ready") from None
                time.sleep(0.1)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``fast``: disconnect clients, roll back their transactions)."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def running(self) -> bool:
        """Whether the server's postmaster is up."""
        return (self.data / "postmaster.pid").exists()

    def create_database(self, name: str) -> str:
        """Create database ``name``; return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(
            f"postgresql://postgres@127.0.0.1:{self.port}/postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.db_url(name)

    def destroy(self) -> None:
        """Stop the server if it runs and delete the cluster's files."""
        with contextlib.suppress(RuntimeError, subprocess.TimeoutExpired):
            if self.running():
                self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def log_tail(self, n: int = 40) -> str:
        """The last lines of the server log (for failure messages)."""
        try:
            return "\n".join((self.root / "log").read_text().splitlines()[-n:])
        except OSError:
            return ""


@contextlib.contextmanager
def pg_cluster() -> Iterator[PgCluster]:
    """A started private cluster, destroyed at the end."""
    cluster = PgCluster()
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()
