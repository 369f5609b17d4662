"""Service settings, read from ``VRADAM_LAB_*`` environment variables (pydantic-settings).

Every field can be set by its upper-cased name with the ``VRADAM_LAB_`` prefix, e.g.
``VRADAM_LAB_DB_URL``, ``VRADAM_LAB_PORT``, ``VRADAM_LAB_LOCAL_MODE``. The database URL
also honours ``VRADAM_LAB_DB`` (the store's own variable) when ``VRADAM_LAB_DB_URL`` is
unset.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from studies.limits import Limits
    from studies.trust import Trust

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def is_loopback(host: str) -> bool:
    """Return whether ``host`` (an address or name) is only reachable from this machine."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Settings(BaseSettings):
    """Configuration of the API server, the embedded service and the workers.

    Attributes:
        db_url: SQLAlchemy URL of the store (SQLite file by default, or PostgreSQL).
        host: Interface the API binds to.
        port: TCP port of the API.
        local_mode: Serve reads without a token; only effective when ``host`` is a
            loopback address. Writes always need a token.
        create_schema: Migrate the database when the app starts (idempotent).
        lease_seconds: How long a worker's claim on a study lasts without a heartbeat.
        heartbeat_seconds: How often a worker renews its lease and checks for a cancel
            request (must be well below ``lease_seconds``).
        poll_seconds: How long an idle worker waits before looking for queued studies.
        ray_address: Ray cluster address for the ``ray`` executor (``None``: a local Ray).
        data_root: The folder studies' ``data_dir`` names are resolved under.
        plugins: Comma-separated optimizer import strings (``pkg.mod:Class``) that
            submitted studies may name; empty: registered optimizers only.
        max_body_bytes: Largest request body; a larger one gets 413 before it is read.
        max_trials_per_study, max_grid_points_per_dimension, max_grid_points_total,
        max_seeds, max_epochs, max_steps_per_epoch, max_retries, max_concurrent,
        max_definition_bytes: The study limits (:class:`studies.limits.Limits`) that
            ``POST /v1/studies`` applies (422 naming the field and the limit).
        task_option_max: ``{task: {option: largest value}}``, merged over the defaults
            (JSON in ``VRADAM_LAB_TASK_OPTION_MAX``).
    """

    model_config = SettingsConfigDict(env_prefix="VRADAM_LAB_", extra="ignore")

    db_url: str = Field(default="")
    host: str = DEFAULT_HOST
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535)
    local_mode: bool = False
    create_schema: bool = True
    lease_seconds: float = Field(default=30.0, gt=0)
    heartbeat_seconds: float = Field(default=2.0, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)
    ray_address: str | None = None
    data_root: Path = Path("data")
    plugins: str = ""
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    max_trials_per_study: int = Field(default=10_000, ge=1)
    max_grid_points_per_dimension: int = Field(default=1_000, ge=1)
    max_grid_points_total: int = Field(default=10_000, ge=1)
    max_seeds: int = Field(default=100, ge=1)
    max_epochs: int = Field(default=10_000, ge=1)
    max_steps_per_epoch: int = Field(default=1_000_000, ge=1)
    max_retries: int = Field(default=10, ge=0)
    max_concurrent: int = Field(default=1_024, ge=1)
    max_definition_bytes: int = Field(default=256 * 1024, ge=1)
    task_option_max: dict[str, dict[str, float]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _defaults(self) -> Settings:
        if not self.db_url:
            from studies.store import DEFAULT_DB_URL

            self.db_url = os.environ.get("VRADAM_LAB_DB", DEFAULT_DB_URL)
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError(
                f"heartbeat_seconds ({self.heartbeat_seconds}) must be below "
                f"lease_seconds ({self.lease_seconds})"
            )
        return self

    def trust(self) -> Trust:
        """The boundary for studies submitted to this service (see :mod:`studies.trust`)."""
        from studies.trust import Trust

        names = [p.strip() for p in self.plugins.split(",") if p.strip()]
        return Trust.service(plugins=names, data_root=self.data_root)

    @property
    def open_reads(self) -> bool:
        """Whether reads are served without a token (local mode on a loopback address)."""
        return self.local_mode and is_loopback(self.host)

    @property
    def limits(self) -> Limits:
        """The study limits these settings configure."""
        from studies.limits import DEFAULT_TASK_OPTION_MAX, Limits

        options = {k: dict(v) for k, v in DEFAULT_TASK_OPTION_MAX.items()}
        for task, bounds in self.task_option_max.items():
            options.setdefault(task, {}).update(bounds)
        return Limits(
            trials_per_study=self.max_trials_per_study,
            grid_points_per_dimension=self.max_grid_points_per_dimension,
            grid_points_total=self.max_grid_points_total,
            seeds=self.max_seeds,
            epochs=self.max_epochs,
            steps_per_epoch=self.max_steps_per_epoch,
            max_retries=self.max_retries,
            max_concurrent=self.max_concurrent,
            definition_bytes=self.max_definition_bytes,
            task_option_max=options,
        )

    @property
    def base_url(self) -> str:
        """The URL clients on this machine use to reach the API."""
        return base_url(self.host, self.port)


def base_url(host: str, port: int) -> str:
    """Return the URL clients on this machine use to reach an API bound to ``host:port``."""
    if host in ("0.0.0.0", "::", ""):
        host = "127.0.0.1"
    if ":" in host and not host.startswith("["):
        host = f"[{host}]"
    return f"http://{host}:{port}"
