"""The store contract: everything the engine, the service and the reports persist.

Cut like Optuna's ``optuna/storages/_base.py``: one abstract class whose docstring is
the contract, one conformance suite (``tests/studies/test_store_conformance.py``) run
over every implementation.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from labcore.results import TrialResult
from studies.store.records import (
    CellRecord,
    RunningTrialRecord,
    StudyRecord,
    StudyStatus,
    TokenRecord,
    TrialRecord,
)


class Store(abc.ABC):
    """Persistent state of studies, cells, trials, per-epoch metrics and API tokens.

    Contract:
        * The database is the single source of truth; a store object holds no state that
          another process could not read back. Several processes may share a database.
        * Optuna's RDB storage lives in the same database: :attr:`url` is the URL to give
          ``optuna.storages.RDBStorage``. :meth:`create_schema` creates both schemas once,
          before workers start (Optuna has a table-creation race).
        * Every method raises :class:`~labcore.errors.StoreError` when the database is
          unreachable or its schema is missing; lookups of a missing object raise
          :class:`~labcore.errors.NotFoundError`; state conflicts raise
          :class:`~labcore.errors.ConflictError`.
        * Studies: created ``queued``; a worker :meth:`claim_study` s one with a lease
          (atomically: two workers never hold the same study), keeps it with
          :meth:`renew_lease`, and ends it with :meth:`release_study`. A running study
          whose lease expired can be claimed by another worker (resume). A process that
          runs one given study (``vradam-hpo run``) takes it with :meth:`acquire_study`,
          under the same lease rules.
        * State checks and the writes they allow are atomic (a status check and a delete,
          a lease check and a release): a concurrent claim never slips in between.
        * Trials: one row per ``(cell_id, key)``, where the key canonically encodes
          ``(hparams, seed)``. A ``failed`` result increments ``attempts`` and keeps the
          row failed; a final result (``complete``, ``diverged``, ``pruned``) replaces a
          failed row; a second final result for the same key raises ConflictError, so no
          finished trial is recorded twice. A result is durable once
          :meth:`record_trial` returns, with its epoch rows written in the same
          transaction.
        * Listing methods return ``(items, total)`` where ``total`` ignores limit/offset.
        * All datetimes are timezone-aware UTC.
    """

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The database URL; also the URL Optuna's RDBStorage uses."""

    # ------------------------------------------------------------------ schema
    @abc.abstractmethod
    def create_schema(self) -> None:
        """Migrate the schema to the latest version and create Optuna's tables.

        Idempotent, and safe when several processes call it at once on a fresh database
        (it serialises them with a database-wide lock).

        Raises:
            StoreError: The database is unreachable or the migration failed.
        """

    @abc.abstractmethod
    def ping(self) -> None:
        """Check that the database answers and the schema exists.

        Raises:
            StoreError: The database is unreachable or the schema is missing.
        """

    def close(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Release connections (pools). The store must not be used afterwards."""

    # ----------------------------------------------------------------- studies
    @abc.abstractmethod
    def create_study(self, name: str, spec: Mapping[str, Any]) -> StudyRecord:
        """Store a submitted study with status ``queued`` and a fresh short-uuid id."""

    @abc.abstractmethod
    def get_study(self, study_id: str) -> StudyRecord:
        """Return the study.

        Raises:
            NotFoundError: No study has this id.
        """

    @abc.abstractmethod
    def list_studies(
        self,
        status: StudyStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        with_spec: bool = True,
    ) -> tuple[list[StudyRecord], int]:
        """Return studies (newest first), optionally of one status, and their total count.

        With ``with_spec=False`` the definitions are not read (each record's ``spec`` is
        empty): what a listing needs, without moving every definition over the wire.
        """

    def study_details(
        self, study_ids: Sequence[str]
    ) -> dict[str, tuple[list[CellRecord], dict[int, dict[str, int]]]]:
        """Return ``{study_id: (cells, outcome counts)}`` for many studies at once.

        The result for each id equals ``(list_cells(id), outcome_counts(id))``; unknown ids
        get empty entries. Implementations should answer with a number of queries that
        does not grow with ``len(study_ids)`` (this default one does not).
        """
        return {sid: (self.list_cells(sid), self.outcome_counts(sid)) for sid in study_ids}

    def study_page(
        self,
        status: StudyStatus | str | None = None,
        limit: int = 50,
        offset: int = 0,
        *,
        with_spec: bool = True,
    ) -> tuple[
        list[StudyRecord], int, dict[str, tuple[list[CellRecord], dict[int, dict[str, int]]]]
    ]:
        """Return :meth:`list_studies` and :meth:`study_details` of its page together.

        Implementations should read them in one transaction with a fixed number of queries.
        """
        records, total = self.list_studies(status, limit, offset, with_spec=with_spec)
        return records, total, self.study_details([r.id for r in records])

    def study_with_details(
        self, study_id: str
    ) -> tuple[StudyRecord, list[CellRecord], dict[int, dict[str, int]]]:
        """Return one study with its cells and outcome counts.

        Raises:
            NotFoundError: No study has this id.
        """
        record = self.get_study(study_id)
        cells, counts = self.study_details([study_id])[study_id]
        return record, cells, counts

    @abc.abstractmethod
    def set_status(
        self, study_id: str, status: StudyStatus | str, error: str | None = None
    ) -> StudyRecord:
        """Set a study's status; sets ``started_at`` on running, ``finished_at`` when final.

        Moving a finished study back to queued or running (a resume) clears
        ``finished_at`` and a spent ``cancel_requested``; a final status releases the lease.

        Raises:
            NotFoundError: No study has this id.
        """

    @abc.abstractmethod
    def request_cancel(self, study_id: str) -> StudyRecord:
        """Ask a study to stop: a queued study is cancelled at once, a running one is flagged.

        Raises:
            NotFoundError: No study has this id.
            ConflictError: The study already finished.
        """

    @abc.abstractmethod
    def delete_study(self, study_id: str) -> None:
        """Delete a study with its cells, trials, epochs and Optuna studies.

        The running check and the delete are atomic. Optuna studies that cannot be removed
        are logged and left behind; the delete still succeeds.

        Raises:
            NotFoundError: No study has this id.
            ConflictError: The study is running.
        """

    @abc.abstractmethod
    def claim_study(self, worker_id: str, lease_seconds: float) -> StudyRecord | None:
        """Atomically claim the oldest queued study, or a running one whose lease expired.

        The claimed study becomes ``running`` with ``worker_id`` and a lease of
        ``lease_seconds``. Returns ``None`` when there is nothing to claim.
        """

    @abc.abstractmethod
    def acquire_study(self, study_id: str, worker_id: str, lease_seconds: float) -> StudyRecord:
        """Atomically take one given study for ``worker_id``, whatever its status.

        It becomes ``running`` with ``worker_id`` and a lease of ``lease_seconds`` (a
        finished study is resumed, as by :meth:`set_status`). Allowed unless the study
        is running under another worker whose lease has not expired.

        Raises:
            NotFoundError: No study has this id.
            ConflictError: Another worker holds a live lease on it.
        """

    @abc.abstractmethod
    def renew_lease(self, study_id: str, worker_id: str, lease_seconds: float) -> bool:
        """Extend the lease; ``False`` if the study is no longer running under this worker."""

    @abc.abstractmethod
    def set_note(self, study_id: str, worker_id: str, note: str | None) -> bool:
        """Set (or clear) what a running study held by ``worker_id`` waits for.

        Returns:
            False when the study is not running under this worker (nothing changed).
        """

    @abc.abstractmethod
    def release_study(
        self, study_id: str, worker_id: str, status: StudyStatus | str, error: str | None = None
    ) -> None:
        """End this worker's lease, setting the study's status (and ``finished_at``).

        Raises:
            NotFoundError: No study has this id.
            ConflictError: The study is held by another worker.
        """

    # ------------------------------------------------------------------- cells
    @abc.abstractmethod
    def ensure_cell(
        self, study_id: str, task: str, optimizer: str, optuna_study_name: str, n_planned: int
    ) -> CellRecord:
        """Return the cell for ``(study_id, task, optimizer)``, creating it if needed.

        Idempotent; an existing cell's ``n_planned`` is updated.

        Raises:
            NotFoundError: No study has this id.
        """

    @abc.abstractmethod
    def list_cells(self, study_id: str) -> list[CellRecord]:
        """Return the study's cells in creation order."""

    # ------------------------------------------------------------------ trials
    @abc.abstractmethod
    def record_trial(
        self,
        cell_id: int,
        key: str,
        hparams: Mapping[str, Any],
        seed: int,
        result: TrialResult,
        value: float | None,
        optuna_trial_number: int | None,
    ) -> TrialRecord:
        """Record one attempt's result (see the class contract for the rules).

        Raises:
            NotFoundError: No cell has this id.
            ConflictError: The key already has a final result.
        """

    @abc.abstractmethod
    def finished_keys(self, cell_id: int) -> set[str]:
        """Return the keys of the cell's trials that have a final outcome."""

    @abc.abstractmethod
    def attempts(self, cell_id: int, key: str) -> int:
        """Return how many attempts the key has had (0 if never run)."""

    @abc.abstractmethod
    def list_trials(
        self,
        study_id: str,
        cell_id: int | None = None,
        outcome: str | None = None,
        limit: int = 100,
        offset: int = 0,
        with_epochs: bool = False,
        epoch_metrics: bool = True,
    ) -> tuple[list[TrialRecord], int]:
        """Return a study's trials (oldest first) and their total count.

        Args:
            study_id: The study.
            cell_id: Only this cell's trials.
            outcome: Only trials with this outcome.
            limit: Page size.
            offset: Trials to skip.
            with_epochs: Fill each record's ``epochs``.
            epoch_metrics: With ``with_epochs``, also decode each epoch's metrics. False
                returns only the epochs that carry an effective learning rate (VRAdam's),
                with empty metrics: what a report reads, several times faster on large
                studies.
        """

    @abc.abstractmethod
    def get_trial(self, study_id: str, trial_id: int) -> TrialRecord:
        """Return one trial with its epochs.

        Raises:
            NotFoundError: No such trial in this study.
        """

    @abc.abstractmethod
    def outcome_counts(self, study_id: str) -> dict[int, dict[str, int]]:
        """Return ``{cell_id: {outcome: count}}`` for the study's trials."""

    # --------------------------------------------------------- running trials
    @abc.abstractmethod
    def start_trial(
        self,
        cell_id: int,
        key: str,
        hparams: Mapping[str, Any],
        seed: int,
        optuna_trial_number: int | None = None,
    ) -> RunningTrialRecord:
        """Mark a trial as running from now, replacing a stale running row of the key.

        Running rows are progress, not results: :meth:`record_trial` removes the key's
        row in its transaction, and a run of the study clears the rest
        (:meth:`clear_running`) when it starts and ends.

        Raises:
            NotFoundError: No cell has this id.
        """

    @abc.abstractmethod
    def update_running(
        self, cell_id: int, key: str, epoch: int, step: int, metrics: Mapping[str, float]
    ) -> bool:
        """Store a running trial's latest epoch; return False when the key is not running."""

    @abc.abstractmethod
    def clear_running(
        self, study_id: str, cell_id: int | None = None, key: str | None = None
    ) -> int:
        """Remove running rows of a study (of one cell, of one key); return how many."""

    @abc.abstractmethod
    def list_running(self, study_id: str) -> list[RunningTrialRecord]:
        """Return the study's running trials, earliest start first (empty if unknown)."""

    @abc.abstractmethod
    def running_counts(self, study_ids: Sequence[str]) -> dict[str, dict[int, int]]:
        """Return ``{study_id: {cell_id: running trials}}`` for many studies at once."""

    # ------------------------------------------------------------------ tokens
    @abc.abstractmethod
    def create_token(self, name: str, scopes: Sequence[str]) -> tuple[TokenRecord, str]:
        """Create an API token; the secret is returned once and stored as a sha256 hash.

        Raises:
            ConflictError: A token with this name exists.
        """

    @abc.abstractmethod
    def verify_token(self, secret: str) -> TokenRecord | None:
        """Return the token for ``secret`` (updating ``last_used_at``), or ``None``.

        Unknown and revoked secrets give ``None``; the comparison is constant-time.
        """

    @abc.abstractmethod
    def list_tokens(self) -> list[TokenRecord]:
        """Return every token, revoked ones included, oldest first."""

    @abc.abstractmethod
    def revoke_token(self, name: str) -> TokenRecord:
        """Revoke a token by name.

        Raises:
            NotFoundError: No token has this name.
        """
