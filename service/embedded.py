"""The embedded service: the API and one in-process worker on one database.

``EmbeddedService`` runs uvicorn in a background thread and a :class:`Worker` in
another long-lived thread (where Ray, if a study asks for it, is initialised), so the
caller's main thread keeps its signal handlers. :func:`serve` is the ``vradam-hpo serve``
command: SQLite by default, bound to 127.0.0.1, local mode (reads without a token).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from types import FrameType

import uvicorn

from service.app import create_app
from service.settings import Settings, base_url
from service.worker import Worker
from studies.store import Store, open_store

logger = logging.getLogger(__name__)

STARTUP_TIMEOUT_S = 30.0


class EmbeddedService:
    """API server plus one worker, in this process's background threads.

    Args:
        settings: Host, port (0 picks a free one), database, lease and poll timings.
        store: A store to share (default: opened from ``settings.db_url``).
        with_worker: Also run a worker (``False``: API only).
        log_level: uvicorn's log level.

    Use as a context manager, or call :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        store: Store | None = None,
        with_worker: bool = True,
        log_level: str = "warning",
    ) -> None:
        self.settings = settings
        self._owns_store = store is None
        self.store = store or open_store(settings.db_url)
        self.worker: Worker | None = None
        if with_worker:
            self.worker = Worker(
                self.store,
                lease_seconds=settings.lease_seconds,
                heartbeat_seconds=settings.heartbeat_seconds,
                poll_seconds=settings.poll_seconds,
                ray_address=settings.ray_address,
                trust=settings.trust(),
            )
        config = uvicorn.Config(
            create_app(settings, self.store),
            host=settings.host,
            port=settings.port,
            log_level=log_level,
            lifespan="on",
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None
        self.port = settings.port

    @property
    def url(self) -> str:
        """The API's base URL."""
        return base_url(self.settings.host, self.port)

    @property
    def docs_url(self) -> str:
        """The interactive API docs."""
        return f"{self.url}/docs"

    def start(self) -> EmbeddedService:
        """Migrate the database, start the API, wait until it listens, start the worker.

        Raises:
            StoreError: The database is unreachable.
            RuntimeError: The server did not start (e.g. the port is taken).
        """
        if self.settings.create_schema:
            self.store.create_schema()
        self._thread = threading.Thread(target=self._server.run, name="api", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the API did not start on {self.settings.host}:{self.settings.port}"
                )
            time.sleep(0.02)
        sockets = [s for srv in self._server.servers for s in srv.sockets]
        if sockets:
            self.port = int(sockets[0].getsockname()[1])
        if self.worker is not None:
            self.worker.start()
        logger.info("embedded service on %s", self.url)
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop the worker (its running study goes back to the queue), then the API."""
        if self.worker is not None:
            self.worker.stop()
            if not self.worker.join(timeout):
                logger.warning("worker did not stop within %.0f s", timeout)
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> EmbeddedService:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_signal() -> int:
    """Block until SIGINT or SIGTERM; return the signal number."""
    received: list[int] = []
    done = threading.Event()

    def handle(signum: int, frame: FrameType | None) -> None:
        received.append(signum)
        done.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        while not done.wait(0.5):
            pass
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    return received[0]


def serve(settings: Settings, *, with_worker: bool = True, log_level: str = "info") -> None:
    """Run the embedded service until SIGINT/SIGTERM (the ``vradam-hpo serve`` command).

    Raises:
        StoreError: The database is unreachable.
        RuntimeError: The server did not start.
    """
    from rich.console import Console

    console = Console(soft_wrap=True)
    service = EmbeddedService(settings, with_worker=with_worker, log_level=log_level)
    service.start()
    try:
        db = safe_url(settings.db_url)
        console.print(f"[bold green]VRAdam Lab[/] API on {service.url}  (database {db})")
        console.print(f"  API docs:         {service.docs_url}")
        console.print(f"  Optuna dashboard: vradam-hpo dashboard --db {db}")
        console.print(f"  API token:        vradam-hpo token create --name NAME --db {db}")
        console.print("                    then: export VRADAM_LAB_TOKEN=<token>")
        if settings.open_reads:
            console.print("  local mode: reads need no token; writes do")
        console.print("Press Ctrl+C to stop.")
        wait_for_signal()
        console.print("stopping...")
    finally:
        service.stop()


def safe_url(url: str) -> str:
    """Return a database URL with its password hidden, for printing."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<database>"
