"""The study runner decides every final status, from what the engine and the lease report."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import pytest

from labcore.errors import SpecError
from studies.runner import StudyRunner, run_study
from studies.spec import parse_spec
from studies.store import SQLStore, StudyStatus
from tests.studies.flaky_store import FlakyStore
from tests.studies.test_engine import quadratic_spec
from tests.workers import trialfns
from workers.executors import LocalExecutor


@pytest.fixture
def always_failing() -> Iterator[None]:
    trialfns.ALWAYS_FAIL_LRS = {1e-3, 0.1, 10.0}
    trialfns._calls.clear()
    yield
    trialfns.ALWAYS_FAIL_LRS = set()


@pytest.fixture
def flaky(sqlite_template: Path, tmp_path: Path) -> Iterator[FlakyStore]:
    path = tmp_path / "flaky.db"
    path.write_bytes(sqlite_template.read_bytes())
    store = FlakyStore(f"sqlite:///{path}")
    yield store
    store.unhang.set()
    store.close()


def flaky_executor() -> LocalExecutor:
    return LocalExecutor(trial_fn="tests.workers.trialfns:flaky")


def test_a_study_whose_every_trial_failed_ends_failed_with_the_cause(
    store: SQLStore, always_failing: None
) -> None:
    spec = quadratic_spec(optimizers=[{"name": "adamw"}], max_retries=1)
    summary = run_study(spec, store, flaky_executor())
    assert summary.status == StudyStatus.FAILED
    record = store.get_study(summary.study_id)
    assert record.status == StudyStatus.FAILED and record.finished_at is not None
    assert record.error is not None
    assert record.error.startswith("no trial succeeded: 6 of 6 trials failed after 2 attempts")
    assert "(first error: flaky failure 2)" in record.error  # the trials' own error, named


def test_some_failed_trials_complete_the_study_and_say_so(store: SQLStore) -> None:
    trialfns.ALWAYS_FAIL_LRS = {10.0}
    trialfns._calls.clear()
    try:
        spec = quadratic_spec(optimizers=[{"name": "adamw"}], max_retries=1)
        summary = run_study(spec, store, flaky_executor())  # each key fails once first
    finally:
        trialfns.ALWAYS_FAIL_LRS = set()
    record = store.get_study(summary.study_id)
    assert record.status == StudyStatus.COMPLETED
    assert record.error is not None and record.error.startswith(
        "2 of 6 trials failed after 2 attempts"
    )


def test_a_short_outage_while_recording_loses_no_finished_trial(flaky: FlakyStore) -> None:
    spec = quadratic_spec(optimizers=[{"name": "adamw"}])
    flaky.fail_records = 4  # about 1.5 s of retries with the engine's backoff
    summary = run_study(spec, flaky, LocalExecutor())
    assert flaky.failed_records == 4  # the first result met the outage and was retried
    assert summary.status == StudyStatus.COMPLETED
    trials, total = flaky.list_trials(summary.study_id, limit=100)
    assert total == 6 and all(t.attempts == 1 for t in trials)


def test_a_lost_lease_is_handed_back_as_soon_as_the_database_answers(
    flaky: FlakyStore,
) -> None:
    lease_s = 1.0
    # one trial that trains for minutes unless the runner stops it
    spec = parse_spec(
        quadratic_spec(
            optimizers=[{"name": "adamw"}],
            seeds=[0],
            sampler={"name": "grid", "points": {"lr": 1}},
            tasks=[{"name": "quadratic", "budget": {"epochs": 100000}}],
        )
    )
    study_id = flaky.create_study(spec.name, spec.to_dict()).id
    runner = StudyRunner(
        flaky, "w1", lease_seconds=lease_s, heartbeat_seconds=0.1, handback_seconds=10
    )
    record = runner.acquire(study_id)
    flaky.down.set()  # renewals fail: the lease runs out after lease_s
    back_up = 2.5
    threading.Timer(back_up, flaky.down.clear).start()
    t0 = time.monotonic()
    report = runner.run(record, spec, lambda s: nullcontext(LocalExecutor()))
    took = time.monotonic() - t0
    assert report.status == StudyStatus.QUEUED, report
    assert back_up <= took < back_up + 3.0, took  # not a lease period later
    study = flaky.get_study(study_id)
    assert study.status == StudyStatus.QUEUED and study.worker_id is None
    assert flaky.list_trials(study_id)[1] == 0  # the cut-off trial is not a result
    assert flaky.claim_study("w2", 30).id == study_id  # claimable at once


def test_a_lease_taken_by_another_worker_is_left_alone(flaky: FlakyStore) -> None:
    spec = parse_spec(quadratic_spec(optimizers=[{"name": "adamw"}]))
    study_id = flaky.create_study(spec.name, spec.to_dict()).id
    runner = StudyRunner(flaky, "w1", lease_seconds=0.5, heartbeat_seconds=0.05)
    record = runner.acquire(study_id)
    time.sleep(0.6)
    assert flaky.claim_study("w2", 30).id == study_id  # expired: w2 took it

    def slow(_spec: Any) -> Any:
        return nullcontext(LocalExecutor(trial_fn="tests.workers.trialfns:sleepy"))

    report = runner.run(record, spec, slow)
    assert report.status is None and report.error and "no longer ours" in report.error
    study = flaky.get_study(study_id)
    assert study.status == StudyStatus.RUNNING and study.worker_id == "w2"


def test_an_executor_that_cannot_start_fails_the_study(store: SQLStore) -> None:
    spec = parse_spec(quadratic_spec(optimizers=[{"name": "adamw"}]))
    study_id = store.create_study(spec.name, spec.to_dict()).id
    runner = StudyRunner(store, "w1")

    def broken(_spec: Any) -> Any:
        raise ConnectionError("no Ray cluster at ray://nowhere")

    report = runner.run(runner.acquire(study_id), spec, broken)
    assert report.status == StudyStatus.FAILED
    assert report.error == "ConnectionError: no Ray cluster at ray://nowhere"
    assert isinstance(report.exception, ConnectionError)
    assert store.get_study(study_id).error == report.error


def test_executor_overrides_are_validated() -> None:
    spec = parse_spec(quadratic_spec())
    assert spec.with_executor(max_concurrent=3).executor.max_concurrent == 3
    with pytest.raises(SpecError) as e:
        spec.with_executor(max_concurrent=0)
    assert e.value.errors[0][0] == "executor.max_concurrent"
    with pytest.raises(SpecError) as e:
        spec.with_executor(ray_address="10.0.0.1:6379")  # the worker's setting, not the study's
    assert e.value.errors[0][0] == "executor.ray_address"


def test_a_study_at_the_trial_limit_cancels_within_seconds_and_can_be_deleted(
    store: SQLStore,
) -> None:
    from studies.limits import Limits, check_limits

    data = quadratic_spec(
        optimizers=[{"name": "adamw"}],
        seeds=[0],
        sampler={"name": "random", "n_trials": Limits().trials_per_study},
    )
    check_limits(parse_spec(data))  # the largest study a service accepts by default
    t0 = time.monotonic()
    summary = run_study(data, store, LocalExecutor(), should_stop=lambda: time.monotonic() - t0 > 3)
    took = time.monotonic() - t0
    assert summary.status == StudyStatus.CANCELLED and took < 15, took
    store.delete_study(summary.study_id)  # once it stopped, delete works
    assert store.list_studies()[1] == 0
