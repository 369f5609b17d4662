"""The store contract (studies/store/base.py), run over SQLite and the real PostgreSQL."""

from __future__ import annotations

import dataclasses
import threading
import time
from datetime import UTC, datetime, timedelta

import optuna
import pytest
import sqlalchemy as sa

from labcore.errors import ConflictError, NotFoundError, StoreError
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.store import SQLStore, StudyStatus, open_store

SPEC = {"name": "s", "seeds": [0]}


def result(outcome: Outcome, val: float = 0.5, epochs: int = 2, error: str | None = None):
    hist = tuple(
        EpochMetrics(e, 10 * e, {"val_loss": 2.0 - e * 0.1}, 0.9) for e in range(epochs + 1)
    )
    return TrialResult(
        outcome=outcome,
        metrics={"val_loss": val, "train_loss": 0.4},
        initial_metrics={"val_loss": 2.0},
        epochs=hist,
        diverged_at_step=7 if outcome == Outcome.DIVERGED else None,
        effective_lr={"mean": 0.8},
        wall_time_s=1.5,
        error=error,
    )


def assert_utc(dt: datetime | None) -> None:
    assert dt is not None and dt.tzinfo is not None and dt.utcoffset() == timedelta(0)


def test_schema_is_idempotent_and_ping(store: SQLStore) -> None:
    store.create_schema()  # the fixture already created it: a second upgrade is a no-op
    store.ping()


def test_ping_without_schema_raises_store_error(tmp_path) -> None:
    empty = SQLStore(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StoreError):
        empty.ping()
    with pytest.raises(StoreError):
        empty.create_study("x", SPEC)


@pytest.mark.postgres
def test_unreachable_postgres_raises_store_error() -> None:
    dead = open_store("postgresql://postgres@127.0.0.1:1/nope")
    with pytest.raises(StoreError):
        dead.ping()


def test_create_get_list_studies(store: SQLStore) -> None:
    a = store.create_study("a", {"name": "a", "x": [1, 2]})
    b = store.create_study("b", SPEC)
    assert a.status == StudyStatus.QUEUED and len(a.id) >= 8 and a.id != b.id
    assert_utc(a.created_at)
    got = store.get_study(a.id)
    assert got.spec == {"name": "a", "x": [1, 2]} and got.name == "a" and not got.cancel_requested
    items, total = store.list_studies()
    assert total == 2 and [s.id for s in items] == [b.id, a.id]  # newest first
    items, total = store.list_studies(limit=1, offset=1)
    assert total == 2 and [s.id for s in items] == [a.id]
    store.set_status(a.id, "running")
    items, total = store.list_studies(status=StudyStatus.RUNNING)
    assert (total, [s.id for s in items]) == (1, [a.id])
    with pytest.raises(NotFoundError):
        store.get_study("nope")


def test_set_status_sets_timestamps(store: SQLStore) -> None:
    s = store.create_study("a", SPEC)
    running = store.set_status(s.id, StudyStatus.RUNNING)
    assert_utc(running.started_at)
    assert running.finished_at is None
    done = store.set_status(s.id, StudyStatus.FAILED, error="boom")
    assert_utc(done.finished_at)
    assert done.error == "boom" and done.started_at == running.started_at
    with pytest.raises(NotFoundError):
        store.set_status("nope", "running")


def test_request_cancel(store: SQLStore) -> None:
    queued = store.create_study("q", SPEC)
    c = store.request_cancel(queued.id)
    assert c.status == StudyStatus.CANCELLED and c.cancel_requested and c.finished_at
    running = store.create_study("r", SPEC)
    store.set_status(running.id, "running")
    r = store.request_cancel(running.id)
    assert r.status == StudyStatus.RUNNING and r.cancel_requested
    with pytest.raises(ConflictError):
        store.request_cancel(queued.id)
    with pytest.raises(NotFoundError):
        store.request_cancel("nope")
    resumed = store.set_status(queued.id, StudyStatus.RUNNING)  # resuming spends the cancel
    assert not resumed.cancel_requested and resumed.finished_at is None


def test_claim_renew_release(store: SQLStore) -> None:
    first = store.create_study("first", SPEC)
    second = store.create_study("second", SPEC)
    c1 = store.claim_study("w1", 60)
    assert c1 is not None and c1.id == first.id  # oldest first
    assert c1.status == StudyStatus.RUNNING and c1.worker_id == "w1"
    assert_utc(c1.lease_expires_at)
    c2 = store.claim_study("w2", 60)
    assert c2 is not None and c2.id == second.id
    assert store.claim_study("w3", 60) is None
    assert store.renew_lease(first.id, "w1", 60)
    assert not store.renew_lease(first.id, "w2", 60)
    with pytest.raises(ConflictError):
        store.release_study(first.id, "w2", "completed")
    store.release_study(first.id, "w1", StudyStatus.COMPLETED)
    done = store.get_study(first.id)
    assert done.status == StudyStatus.COMPLETED and done.worker_id is None and done.finished_at
    assert not store.renew_lease(first.id, "w1", 60)


def test_a_running_studys_note_is_its_holders_and_ends_with_the_state(store: SQLStore) -> None:
    study = store.create_study("noted", SPEC)
    assert not store.set_note(study.id, "w1", "waiting")  # queued: nobody holds it
    assert store.claim_study("w1", 60) is not None
    assert not store.set_note(study.id, "w2", "hijack")  # only the holder notes it
    assert store.set_note(study.id, "w1", "waiting for a node with GPU=1")
    assert store.get_study(study.id).note == "waiting for a node with GPU=1"
    assert store.list_studies()[0][0].note == "waiting for a node with GPU=1"
    assert store.set_note(study.id, "w1", None)
    assert store.get_study(study.id).note is None
    assert store.set_note(study.id, "w1", "waiting again")
    store.release_study(study.id, "w1", StudyStatus.QUEUED)
    assert store.get_study(study.id).note is None  # a note belongs to its state


def test_expired_lease_is_claimed_by_another_worker(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    assert store.claim_study("w1", 0.05).id == s.id
    time.sleep(0.2)
    again = store.claim_study("w2", 60)
    assert again is not None and again.id == s.id and again.worker_id == "w2"
    assert not store.renew_lease(s.id, "w1", 60)


def test_concurrent_claims_never_share_a_study(store_url: str) -> None:
    setup = SQLStore(store_url)
    ids = {setup.create_study(f"s{i}", SPEC).id for i in range(4)}
    claimed: list[str] = []
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        st = SQLStore(store_url)
        try:
            while (rec := st.claim_study(f"w{n}", 60)) is not None:
                claimed.append(rec.id)
        except BaseException as e:
            errors.append(e)
        finally:
            st.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    setup.close()
    assert not errors
    assert sorted(claimed) == sorted(ids)  # every study claimed exactly once


def test_cells_are_idempotent(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    a = store.ensure_cell(s.id, "quadratic", "adamw", "s/quadratic/adamw", 4)
    b = store.ensure_cell(s.id, "quadratic", "vradam", "s/quadratic/vradam", 4)
    again = store.ensure_cell(s.id, "quadratic", "adamw", "s/quadratic/adamw", 6)
    assert again.id == a.id and again.n_planned == 6
    assert [c.id for c in store.list_cells(s.id)] == [a.id, b.id]
    with pytest.raises(NotFoundError):
        store.ensure_cell("nope", "quadratic", "adamw", "x", 1)


def test_record_trial_rules(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    cell = store.ensure_cell(s.id, "quadratic", "adamw", "s/quadratic/adamw", 4)
    hp = {"lr": 0.1, "weight_decay": 0.0}
    failed = store.record_trial(cell.id, "k", hp, 0, result(Outcome.FAILED, error="e1"), None, 0)
    assert (failed.outcome, failed.attempts, failed.error) == ("failed", 1, "e1")
    on_gpu = dataclasses.replace(result(Outcome.FAILED, error="e2"), device="cuda")
    failed = store.record_trial(cell.id, "k", hp, 0, on_gpu, None, 1)
    assert (failed.outcome, failed.attempts, failed.error, failed.device) == (
        "failed", 2, "e2", "cuda"
    )  # fmt: skip
    assert store.finished_keys(cell.id) == set() and store.attempts(cell.id, "k") == 2
    final = store.record_trial(cell.id, "k", hp, 0, result(Outcome.COMPLETE, 0.25, 3), 0.25, 2)
    assert (final.outcome, final.attempts, final.value, final.error) == ("complete", 3, 0.25, None)
    assert final.optuna_trial_number == 2 and final.task == "quadratic" and final.hparams == hp
    assert final.metrics == {"val_loss": 0.25, "train_loss": 0.4}
    assert final.effective_lr == {"mean": 0.8} and final.wall_time_s == 1.5
    assert final.device == "cpu"  # the latest attempt's device
    assert_utc(final.finished_at)
    with pytest.raises(ConflictError):
        store.record_trial(cell.id, "k", hp, 0, result(Outcome.COMPLETE), 0.5, 3)
    with pytest.raises(ConflictError):
        store.record_trial(cell.id, "k", hp, 0, result(Outcome.FAILED), None, 3)
    assert store.finished_keys(cell.id) == {"k"} and store.attempts(cell.id, "k") == 3
    assert store.attempts(cell.id, "never") == 0
    got = store.get_trial(s.id, final.id)
    assert [e.epoch for e in got.epochs] == [0, 1, 2, 3]  # the failed attempts' epochs replaced
    assert got.epochs[1] == EpochMetrics(1, 10, {"val_loss": 1.9}, 0.9)
    with pytest.raises(NotFoundError):
        store.record_trial(999_999, "k", hp, 0, result(Outcome.COMPLETE), 0.5, 0)


def test_diverged_trials_round_trip_non_finite_metrics(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    cell = store.ensure_cell(s.id, "quadratic", "adamw", "s/quadratic/adamw", 1)
    res = TrialResult(
        Outcome.DIVERGED,
        {"val_loss": float("nan"), "train_loss": float("inf")},
        {"val_loss": 2.0},
        (EpochMetrics(0, 0, {"val_loss": 2.0}), EpochMetrics(1, 5, {"train_loss": float("-inf")})),
        diverged_at_step=5,
    )
    rec = store.record_trial(cell.id, "d", {"lr": 10.0}, 1, res, 2.0, 0)
    got = store.get_trial(s.id, rec.id)
    assert got.outcome == "diverged" and got.value == 2.0 and got.diverged_at_step == 5
    assert got.metrics["val_loss"] != got.metrics["val_loss"]  # NaN survives
    assert got.metrics["train_loss"] == float("inf")
    assert got.epochs[1].metrics == {"train_loss": float("-inf")}


def test_list_trials_filters_pages_and_counts(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    other = store.create_study("o", SPEC)
    a = store.ensure_cell(s.id, "quadratic", "adamw", "s/q/adamw", 3)
    b = store.ensure_cell(s.id, "quadratic", "vradam", "s/q/vradam", 3)
    o = store.ensure_cell(other.id, "quadratic", "adamw", "o/q/adamw", 1)
    for i, out in enumerate([Outcome.COMPLETE, Outcome.DIVERGED, Outcome.FAILED]):
        store.record_trial(a.id, f"a{i}", {"lr": i}, 0, result(out), 1.0, i)
        store.record_trial(b.id, f"b{i}", {"lr": i}, 0, result(Outcome.COMPLETE), 1.0, i)
    store.record_trial(o.id, "o", {"lr": 1}, 0, result(Outcome.COMPLETE), 1.0, 0)
    items, total = store.list_trials(s.id)
    assert total == 6 and [t.key for t in items] == ["a0", "b0", "a1", "b1", "a2", "b2"]
    assert all(t.epochs == () for t in items)
    items, total = store.list_trials(s.id, cell_id=a.id, outcome="diverged", with_epochs=True)
    assert total == 1 and items[0].key == "a1" and len(items[0].epochs) == 3
    assert items[0].optimizer == "adamw" and items[0].diverged_at_step == 7
    items, total = store.list_trials(s.id, limit=2, offset=4, with_epochs=True)
    assert total == 6 and [t.key for t in items] == ["a2", "b2"] and len(items[1].epochs) == 3
    assert store.outcome_counts(s.id) == {
        a.id: {"complete": 1, "diverged": 1, "failed": 1},
        b.id: {"complete": 3},
    }
    with pytest.raises(NotFoundError):
        store.get_trial(other.id, items[0].id)  # a trial of another study


def test_only_one_of_two_concurrent_final_results_lands(store_url: str) -> None:
    setup = SQLStore(store_url)
    s = setup.create_study("s", SPEC)
    cell = setup.ensure_cell(s.id, "quadratic", "adamw", "s/q/adamw", 1)
    outcomes: list[str] = []
    barrier = threading.Barrier(4)

    def record(n: int) -> None:
        st = SQLStore(store_url)
        barrier.wait()
        try:
            st.record_trial(cell.id, "same", {"lr": 1}, 0, result(Outcome.COMPLETE), 1.0, n)
            outcomes.append("ok")
        except ConflictError:
            outcomes.append("conflict")
        finally:
            st.close()

    threads = [threading.Thread(target=record, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["conflict"] * 3 + ["ok"]
    assert setup.list_trials(s.id)[1] == 1
    setup.close()


def test_delete_study_removes_everything_including_optuna(store: SQLStore) -> None:
    s = store.create_study("s", SPEC)
    keep = store.create_study("keep", SPEC)
    cell = store.ensure_cell(s.id, "quadratic", "adamw", f"s.{s.id}/quadratic/adamw", 1)
    store.ensure_cell(keep.id, "quadratic", "adamw", f"keep.{keep.id}/quadratic/adamw", 1)
    store.record_trial(cell.id, "k", {"lr": 1}, 0, result(Outcome.COMPLETE), 1.0, 0)
    storage = optuna.storages.RDBStorage(store.url)
    optuna.create_study(storage=storage, study_name=cell.optuna_study_name)
    optuna.create_study(storage=storage, study_name=f"keep.{keep.id}/quadratic/adamw")
    store.set_status(s.id, "running")
    with pytest.raises(ConflictError):
        store.delete_study(s.id)
    store.set_status(s.id, "completed")
    store.delete_study(s.id)
    with pytest.raises(NotFoundError):
        store.get_study(s.id)
    names = {x.study_name for x in optuna.get_all_study_summaries(storage)}
    assert names == {f"keep.{keep.id}/quadratic/adamw"}
    engine = sa.create_engine(store.url)
    with engine.connect() as conn:
        for table in ("lab_cells", "lab_trials", "lab_trial_epochs"):
            n = conn.execute(
                sa.text(f"SELECT count(*) FROM {table} WHERE study_id = :s"), {"s": s.id}
            )
            assert n.scalar() == 0
    engine.dispose()
    storage.engine.dispose()
    with pytest.raises(NotFoundError):
        store.delete_study(s.id)


def test_delete_succeeds_when_an_optuna_study_cannot_be_removed(
    store: SQLStore, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    s = store.create_study("s", SPEC)
    store.ensure_cell(s.id, "quadratic", "adamw", f"s.{s.id}/quadratic/adamw", 1)
    store.ensure_cell(s.id, "quadratic", "sgd", f"s.{s.id}/quadratic/sgd", 1)  # never created

    def broken(study_name: str, storage: object) -> None:
        raise RuntimeError("optuna tables locked")

    monkeypatch.setattr(optuna, "delete_study", broken)
    store.delete_study(s.id)  # the study is gone: no error for a delete that happened
    with pytest.raises(NotFoundError):
        store.get_study(s.id)
    assert "optuna tables locked" in caplog.text


def test_tokens(store: SQLStore) -> None:
    rec, secret = store.create_token("ci", ["read", "write"])
    assert rec.scopes == ("read", "write") and rec.revoked_at is None and rec.last_used_at is None
    assert_utc(rec.created_at)
    with pytest.raises(ConflictError):
        store.create_token("ci", ["read"])
    engine = sa.create_engine(store.url)
    with engine.connect() as conn:
        stored = [tuple(r) for r in conn.execute(sa.text("SELECT * FROM lab_tokens"))]
    engine.dispose()
    assert secret not in repr(stored)  # only the hash is stored
    seen = store.verify_token(secret)
    assert seen is not None and seen.name == "ci"
    assert_utc(seen.last_used_at)
    assert store.verify_token(secret + "x") is None and store.verify_token("") is None
    store.create_token("reader", ["read"])
    assert [t.name for t in store.list_tokens()] == ["ci", "reader"]
    revoked = store.revoke_token("ci")
    assert_utc(revoked.revoked_at)
    assert store.verify_token(secret) is None
    with pytest.raises(NotFoundError):
        store.revoke_token("nobody")


def test_results_are_durable_across_store_objects(store_url: str) -> None:
    a = SQLStore(store_url)
    s = a.create_study("s", SPEC)
    cell = a.ensure_cell(s.id, "quadratic", "adamw", "s/q/adamw", 1)
    a.record_trial(cell.id, "k", {"lr": 1}, 0, result(Outcome.COMPLETE), 1.0, 0)
    a.close()
    b = SQLStore(store_url)
    assert b.finished_keys(cell.id) == {"k"}
    assert b.get_study(s.id).created_at < datetime.now(UTC)
    b.close()
