"""One conformance suite for every executor (workers/executors/base.py's contract)."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from labcore.budget import Budget
from labcore.outcomes import Outcome
from labcore.results import TrialResult
from studies.sampling import trial_key
from workers.executors import Executor, LocalExecutor, TrialRequest

FAKE = "tests.workers.trialfns:sleepy"


def req(i: int, task: str = "fake", epochs: int = 2, **hparams: Any) -> TrialRequest:
    hp = {"lr": 1.0 + i, **hparams}
    return TrialRequest(
        task, "adamw", hp, i % 2, Budget(epochs), key=trial_key(hp, i % 2), cell_id=1
    )


def make(kind: str, request: pytest.FixtureRequest, max_concurrent: int, trial_fn: str) -> Executor:
    if kind == "ray":
        request.getfixturevalue("ray_cluster")
        from workers.executors.ray_executor import RayExecutor

        return RayExecutor(max_concurrent=max_concurrent, trial_fn=trial_fn)
    return LocalExecutor(max_concurrent=max_concurrent, trial_fn=trial_fn)


KINDS = ["local", pytest.param("ray", marks=[pytest.mark.ray, pytest.mark.slow])]


@pytest.fixture(params=KINDS)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def executor_factory(kind: str, request: pytest.FixtureRequest) -> Iterator[Any]:
    made: list[Executor] = []

    def factory(max_concurrent: int = 2, trial_fn: str = FAKE) -> Executor:
        made.append(make(kind, request, max_concurrent, trial_fn))
        return made[-1]

    yield factory
    for ex in made:
        ex.close()


def test_real_trials_on_quadratic(executor_factory: Any) -> None:
    ex = executor_factory(trial_fn="workers.trial:run_trial")
    requests = [
        TrialRequest("quadratic", "adamw", {"lr": lr}, s, Budget(2), key=f"{lr}/{s}", cell_id=3)
        for lr in (0.1, 10.0)
        for s in (0, 1)
    ]
    outs = list(ex.run(requests))
    assert sorted(o.request.key for o in outs) == sorted(r.key for r in requests)
    by_lr = {}
    for o in outs:
        assert not o.cancelled
        by_lr.setdefault(o.request.hparams["lr"], set()).add(o.result.outcome)
        assert o.result.epochs[0].epoch == 0 and "val_loss" in o.result.initial_metrics
    assert by_lr == {0.1: {Outcome.COMPLETE}, 10.0: {Outcome.DIVERGED}}


def test_failures_are_results_not_exceptions(executor_factory: Any) -> None:
    ex = executor_factory()
    outs = {o.request.key: o for o in ex.run([req(0), req(1, crash=True), req(2)])}
    assert len(outs) == 3
    crashed = outs[req(1, crash=True).key].result
    assert crashed.outcome == Outcome.FAILED and "boom" in (crashed.error or "")
    assert outs[req(0).key].result.outcome == Outcome.COMPLETE


def test_trials_run_concurrently_up_to_the_limit(executor_factory: Any, tmp_path: Path) -> None:
    ex = executor_factory(max_concurrent=2)
    # 2 epochs x 0.4 s each, after the first two have met (however slowly workers start)
    requests = [req(i, sleep=0.4, meet=str(tmp_path), peers=2) for i in range(4)]
    outs = list(ex.run(requests))
    spans = sorted((o.result.metrics["t0"], o.result.metrics["t1"]) for o in outs)
    overlaps = [max(0.0, min(a[1], b[1]) - max(a[0], b[0])) for a in spans for b in spans if a < b]
    assert max(overlaps) > 0.3  # two trials really ran at the same time
    at_once = max(sum(1 for s in spans if s[0] <= t < s[1]) for t, _ in spans)
    assert at_once <= 2  # and never more than the limit


def test_should_prune_stops_a_trial_as_pruned(executor_factory: Any) -> None:
    ex = executor_factory(max_concurrent=1)
    seen: list[int] = []

    def prune(request: TrialRequest, epoch: Any) -> bool:
        seen.append(epoch.epoch)
        return request.hparams["lr"] == 1.0 and epoch.epoch >= 2

    outs = {
        o.request.key: o for o in ex.run([req(0, epochs=5), req(1, epochs=3)], should_prune=prune)
    }
    pruned = outs[req(0, epochs=5).key].result
    assert pruned.outcome == Outcome.PRUNED and [e.epoch for e in pruned.epochs] == [0, 1, 2]
    assert outs[req(1, epochs=3).key].result.outcome == Outcome.COMPLETE
    assert 0 not in seen  # the epoch at initialisation is never offered to the pruner


def test_progress_hooks_see_each_start_and_every_epoch(executor_factory: Any) -> None:
    ex = executor_factory(max_concurrent=1)
    events: list[tuple[str, str, int]] = []
    lock = threading.Lock()

    def on_start(request: TrialRequest) -> None:
        with lock:
            events.append(("start", request.key, -1))

    def on_epoch(request: TrialRequest, epoch: Any) -> None:
        with lock:
            events.append(("epoch", request.key, epoch.epoch))
        raise RuntimeError("a broken hook must not fail the trial")

    requests = [req(0, epochs=3), req(1, epochs=2)]
    outs = list(ex.run(requests, on_start=on_start, on_epoch=on_epoch))
    assert {o.result.outcome for o in outs} == {Outcome.COMPLETE}
    for r, n in ((requests[0], 3), (requests[1], 2)):
        mine = [(kind, e) for kind, key, e in events if key == r.key]
        assert mine == [("start", -1)] + [("epoch", e) for e in range(n + 1)]  # epoch 0 too


def test_should_stop_cancels_within_seconds(executor_factory: Any) -> None:
    ex = executor_factory(max_concurrent=2)
    requests = [req(i, epochs=40, sleep=0.25) for i in range(4)]  # 10 s each if not stopped
    first_epoch: list[float] = []

    def watch(request: TrialRequest, epoch: Any) -> bool:  # sees every epoch; prunes nothing
        if not first_epoch:
            first_epoch.append(time.monotonic())
        return False

    def stop() -> bool:  # a cancel request 1 s after training started
        return bool(first_epoch) and time.monotonic() - first_epoch[0] > 1.0

    outs = list(ex.run(requests, should_stop=stop, should_prune=watch))
    assert first_epoch and time.monotonic() - first_epoch[0] < 7.0
    assert outs and len(outs) <= 4 and all(o.cancelled for o in outs)
    assert all(o.result.outcome != Outcome.COMPLETE for o in outs)


def slow_quadratic(
    task: str,
    optimizer: str,
    hparams: Any,
    seed: int,
    budget: Any = None,
    report: Any = None,
    **kw: Any,
) -> TrialResult:
    """``run_trial`` on a quadratic whose steps take 10 ms: one epoch lasts 20 s."""
    from workers.tasks.quadratic import QuadraticTask
    from workers.trial import run_trial

    class Slow(QuadraticTask):
        def loss(self, model: Any, batch: Any) -> Any:
            time.sleep(0.01)
            return super().loss(model, batch)

    kw = {k: v for k, v in kw.items() if k not in ("data_dir", "task_options")}
    return run_trial(Slow(steps_per_epoch=2000), optimizer, hparams, seed, budget, report, **kw)


def test_local_should_stop_interrupts_a_long_epoch() -> None:
    ex = LocalExecutor(trial_fn="tests.workers.test_executors:slow_quadratic")
    polls: list[float] = []

    def stop() -> bool:  # a cancel 1 s after the trial started
        polls.append(time.monotonic())
        return polls[-1] >= polls[0] + 1.0

    outs = list(ex.run([req(0, task="quadratic", epochs=1)], should_stop=stop))
    late = time.monotonic() - (polls[0] + 1.0)
    assert late < 1.5  # not the 20 s epoch (timing: 2 shared cores)
    assert len(outs) == 1 and outs[0].cancelled
    assert outs[0].result.outcome == Outcome.PRUNED
    assert [e.epoch for e in outs[0].result.epochs] == [0]


def test_stop_before_start_runs_nothing(executor_factory: Any) -> None:
    ex = executor_factory()
    outs = list(ex.run([req(0), req(1)], should_stop=lambda: True))
    assert all(o.cancelled for o in outs)
    assert all(o.result.outcome != Outcome.COMPLETE for o in outs)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_lost_worker_is_a_failed_result(ray_cluster: None) -> None:
    from workers.executors.ray_executor import RayExecutor

    with RayExecutor(max_concurrent=2, trial_fn=FAKE) as ex:
        outs = {o.request.key: o for o in ex.run([req(0, die=True), req(1)])}
    lost = outs[req(0, die=True).key].result
    assert lost.outcome == Outcome.FAILED and "worker" in (lost.error or "")
    assert outs[req(1).key].result.outcome == Outcome.COMPLETE


@pytest.mark.ray
@pytest.mark.slow
def test_ray_run_left_by_its_caller_stops_tune(ray_cluster: None) -> None:
    from workers.executors import ray_executor, ray_run

    with ray_executor.RayExecutor(max_concurrent=2, trial_fn=FAKE) as ex:
        outs = ex.run([req(0, epochs=1), req(1, epochs=150, sleep=0.1)])  # a 15 s trial
        assert next(outs).request.key == req(0, epochs=1).key
        t0 = time.monotonic()
        outs.close()  # the caller stops iterating (as when its loop body raises)
        closed_in = time.monotonic() - t0
        alive = [t for t in threading.enumerate() if t.name == "ray-tune-fit" and t.is_alive()]
    assert not alive and not ray_run.RUNS  # Tune stopped, nothing left behind
    assert closed_in < 12  # stopped, not run to its end


def test_local_validates_its_limit() -> None:
    with pytest.raises(ValueError):
        LocalExecutor(max_concurrent=0)


@pytest.mark.ray
@pytest.mark.slow
def test_ray_default_concurrency_follows_the_cluster_cpus(
    ray_cluster: None, tmp_path: Path
) -> None:
    from workers.executors.ray_executor import RayExecutor

    with RayExecutor(trial_fn=FAKE) as ex:  # no max_concurrent: the cluster decides
        assert ex.auto_concurrency
        # the first trial waits for a second one, so a slow actor start cannot hide the overlap
        requests = [req(i, sleep=0.4, meet=str(tmp_path), peers=2) for i in range(5)]
        outs = list(ex.run(requests))
        assert ex.max_concurrent == 2  # the session cluster has 2 CPUs, 1 per trial
    spans = sorted((o.result.metrics["t0"], o.result.metrics["t1"]) for o in outs)
    at_once = max(sum(1 for s in spans if s[0] <= t < s[1]) for t, _ in spans)
    assert len(outs) == 5 and at_once == 2


@pytest.mark.ray
def test_ray_concurrency_estimate_before_ray_starts() -> None:
    from studies.executors import build_executor
    from studies.spec import load_spec
    from workers.executors.ray_executor import RayExecutor

    assert RayExecutor(num_cpus=6, cpus_per_trial=2).max_concurrent == 3
    assert RayExecutor(max_concurrent=5, num_cpus=2).max_concurrent == 5
    spec = load_spec(Path(__file__).parents[2] / "studies/definitions/hypergrid.yaml")
    assert spec.executor.max_concurrent is None  # no hard-coded 64 any more
    ex = build_executor(spec.executor)
    assert isinstance(ex, RayExecutor) and ex.auto_concurrency
    assert ex.max_concurrent == len(os.sched_getaffinity(0))  # 1 CPU per trial
    with pytest.raises(ValueError):
        RayExecutor(max_concurrent=0)
