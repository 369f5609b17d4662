"""The Ray executor: each batch of trials is one Ray Tune run (``tune.Tuner``).

Every request is one Tune trial of a function trainable that calls ``run_trial``; Tune
places trials with per-trial resources (``tune.with_resources``: CPUs and fractional
GPUs) and runs at most ``max_concurrent`` at a time (``max_concurrent_trials``). Actors
are reused between trials, so a worker imports torch once.

Results flow back while the run goes on: ``Tuner.fit`` runs in a helper thread, and a
Tune :class:`~ray.tune.Callback` (:mod:`workers.executors.ray_run`, with the stopper and the
run's driver-side state) puts each trial's final result on a queue that
:meth:`RayExecutor.run` yields from. A :class:`~ray.tune.Stopper` evaluated on the driver
applies pruning (``should_prune``) and cancellation (``should_stop``: ``stop_all``) per
epoch (so, unlike the local executor, a cancel waits for the running epochs to end). A
caller that stops iterating makes the stopper stop everything, and waits for Tune to
end. A trial whose worker dies, or whose trainable raises, becomes a ``FAILED`` result
(Tune's own retries are off; the engine retries).

Ray notes (2.60): a new local cluster enables token authentication by default (Ray
writes a token to ``~/.ray/auth_token``; a remote cluster needs that token too); call
this from a long-lived thread or process, not a web server's main thread (``ray.init``
replaces its SIGTERM handler).
"""

from __future__ import annotations

import json
import logging
import os
import queue
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from ray import tune

from labcore.results import EpochMetrics
from workers.executors.base import (
    DEFAULT_TRIAL_FN,
    EpochFn,
    Executor,
    PruneFn,
    StartFn,
    StopFn,
    TrialOutcome,
    TrialRequest,
    call_trial,
    failed_result,
    load_trial_fn,
)
from workers.executors.ray_resources import wait_until_placeable
from workers.executors.ray_run import RUNS, TuneCollector, TuneRun, TuneStopper

logger = logging.getLogger(__name__)

JOIN_TIMEOUT_S = 60.0  # how long a caller that stopped iterating waits for Tune to end

_QUIET_ENV = {
    "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1",  # no CSV/JSON/TensorBoard files per trial
    "TUNE_GLOBAL_CHECKPOINT_S": "3600",  # experiment state: the store is the truth
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_WARN_INSUFFICENT_RESOURCE_THRESHOLD_S": "600",
    "RAY_CHDIR_TO_TRIAL_DIR": "0",  # trials keep the worker's directory (paths stay valid)
}


def _gpu_device(gpus: float) -> tuple[str | None, str | None]:
    """``(device, error)`` for a trial that reserved ``gpus`` GPUs (none: CPU or auto).

    A trial that asked for a GPU runs on CUDA or fails saying why; it never falls back to
    the CPU silently.
    """
    if gpus <= 0:
        return None, None
    import torch

    if torch.cuda.is_available():
        return "cuda", None
    return None, (
        f"the trial asked for {gpus:g} GPU but this worker's torch {torch.__version__} sees "
        "no CUDA device (a CPU build of torch, or no driver): see docs/cluster.md"
    )


def _trainable(
    config: dict[str, Any], requests: list[dict[str, Any]], trial_fn: str, gpus: float = 0.0
) -> None:
    """The Tune function trainable: run one request and report its epochs and result."""
    index = int(config["i"])
    request = TrialRequest.from_dict(requests[index])
    device, error = _gpu_device(gpus)
    if error is not None:
        result = failed_result(error)
        tune.report({"i": index, "kind": "final", "result_json": json.dumps(result.to_dict())})
        return

    def report(epoch: EpochMetrics) -> bool:
        tune.report(
            {
                "i": index,
                "kind": "epoch",
                "epoch": epoch.epoch,
                "step": epoch.step,
                "metrics_json": json.dumps(dict(epoch.metrics)),
                "elr": epoch.effective_lr_ratio,
            }
        )
        return False

    result = call_trial(load_trial_fn(trial_fn), request, report, device, contain_exit=False)
    tune.report({"i": index, "kind": "final", "result_json": json.dumps(result.to_dict())})


class RayExecutor(Executor):
    """Runs trials on Ray Tune (see the module docstring).

    Args:
        max_concurrent: Trials at a time (Tune's ``max_concurrent_trials``); ``None``: as
            many as the cluster's CPUs (and GPUs) hold at the per-trial resources, at most
            the run's trials (estimated from this machine's CPUs until Ray starts).
        cpus_per_trial: CPUs reserved per trial.
        gpus_per_trial: GPUs per trial; fractions share a GPU (0.5: two trials per GPU).
        custom_resources: Custom Ray resources per trial (``{"gpu_node": 0.5}``): trials
            run only on nodes started with them (``ray start --resources``).
        address: Ray cluster address; ``None`` starts (or reuses) a local Ray.
        num_cpus: CPUs of a local Ray started here (``None``: all).
        trial_fn: Import string of the trial function (tests inject failures here).
        storage_path: Where Tune keeps its run state (default: a temporary directory).
        resource_wait_s: How long a run waits for a node that can hold one trial, on a
            cluster reached by ``address`` (a local Ray fails at once; see
            :mod:`workers.executors.ray_resources`).
        on_wait: Told why a run waits for resources, and ``None`` once it goes on.

    Raises:
        ValueError: ``max_concurrent`` below 1, negative resources, or a custom resource
            named like one of Ray's own (CPU, GPU, memory).
    """

    name = "ray"

    def __init__(
        self,
        max_concurrent: int | None = None,
        cpus_per_trial: float = 1.0,
        gpus_per_trial: float = 0.0,
        address: str | None = None,
        num_cpus: int | None = None,
        trial_fn: str = DEFAULT_TRIAL_FN,
        storage_path: str | None = None,
        resource_wait_s: float = 60.0,
        on_wait: Callable[[str | None], None] | None = None,
        custom_resources: Mapping[str, float] | None = None,
    ) -> None:
        if cpus_per_trial <= 0 or gpus_per_trial < 0:
            raise ValueError("cpus_per_trial must be > 0 and gpus_per_trial >= 0")
        self.auto_concurrency = max_concurrent is None
        local_cpus = num_cpus or len(os.sched_getaffinity(0))
        estimate = max(1, int(local_cpus // cpus_per_trial))
        super().__init__(estimate if max_concurrent is None else max_concurrent)
        custom = {str(k): float(v) for k, v in (custom_resources or {}).items()}
        clash = {k for k in custom if k.upper() in ("CPU", "GPU") or k == "memory"}
        if clash or any(v <= 0 for v in custom.values()):
            raise ValueError(f"custom resources need own names and amounts > 0: {custom}")
        self.cpus_per_trial = cpus_per_trial
        self.gpus_per_trial = gpus_per_trial
        self.custom_resources = custom
        self.address = address
        self.num_cpus = num_cpus
        self.trial_fn = trial_fn
        self._own_storage = storage_path is None
        self.storage_path = storage_path or tempfile.mkdtemp(prefix="vradam-tune-")
        self._started_ray = False
        self.resource_wait_s = resource_wait_s
        self.on_wait = on_wait

    def _ensure_ray(self) -> None:
        import ray

        # Per-trial result files are off (the store keeps everything), so the end-of-run
        # analysis would warn once per trial that it found none.
        logging.getLogger("ray.tune.analysis.experiment_analysis").setLevel(logging.ERROR)
        if ray.is_initialized():
            return
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        if self.address:
            ray.init(address=self.address, **kwargs)
        else:
            ray.init(num_cpus=self.num_cpus, **kwargs)
        self._started_ray = True

    def run(
        self,
        requests: Sequence[TrialRequest],
        *,
        should_stop: StopFn | None = None,
        should_prune: PruneFn | None = None,
        on_start: StartFn | None = None,
        on_epoch: EpochFn | None = None,
    ) -> Iterator[TrialOutcome]:
        """Run ``requests`` as one Tune run; yield outcomes as trials complete."""
        requests = list(requests)
        if not requests:
            return
        for k, v in _QUIET_ENV.items():
            os.environ.setdefault(k, v)
        self._ensure_ray()
        wait_until_placeable(
            {"CPU": self.cpus_per_trial, "GPU": self.gpus_per_trial, **self.custom_resources},
            can_grow=self.address is not None,
            wait_s=self.resource_wait_s,
            on_wait=self.on_wait,
        )

        concurrent = self._concurrency(len(requests))
        run_id = f"vradam-{uuid.uuid4().hex[:8]}"
        run = RUNS[run_id] = TuneRun(
            requests, should_stop or (lambda: False), should_prune, on_start, on_epoch
        )
        stopper, collector = TuneStopper(run_id), TuneCollector(run_id)
        trainable = tune.with_resources(
            tune.with_parameters(
                _trainable,
                requests=[r.to_dict() for r in requests],
                trial_fn=self.trial_fn,
                gpus=self.gpus_per_trial,
            ),
            {
                "cpu": self.cpus_per_trial,
                "gpu": self.gpus_per_trial,
                "custom_resources": dict(self.custom_resources),
            },
        )
        tuner = tune.Tuner(
            trainable,
            param_space={"i": tune.grid_search(list(range(len(requests))))},
            tune_config=tune.TuneConfig(
                num_samples=1, max_concurrent_trials=concurrent, reuse_actors=True
            ),
            run_config=tune.RunConfig(
                name=run_id,
                storage_path=self.storage_path,
                stop=stopper,
                callbacks=[collector],
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=0),
                checkpoint_config=tune.CheckpointConfig(checkpoint_frequency=0),
            ),
        )
        errors: list[BaseException] = []

        def fit() -> None:
            try:
                tuner.fit()
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=fit, name="ray-tune-fit", daemon=True)
        thread.start()
        try:
            while thread.is_alive() or not run.out.empty():
                try:
                    yield run.out.get(timeout=0.1)
                except queue.Empty:
                    continue
            thread.join()
            run.finish()
            while not run.out.empty():
                yield run.out.get()
        finally:
            if thread.is_alive():  # the caller stopped iterating (an exception, a break)
                run.closing = True  # the stopper now stops every trial
                thread.join(JOIN_TIMEOUT_S)
                if thread.is_alive():
                    logger.warning("Tune run %s did not stop within %.0f s", run_id, JOIN_TIMEOUT_S)
            RUNS.pop(run_id, None)
        if errors:
            raise RuntimeError(f"Ray Tune run failed: {errors[0]}") from errors[0]

    def _concurrency(self, n_requests: int) -> int:
        """Trials at a time for a run of ``n_requests`` (see ``max_concurrent``).

        Without an explicit ``max_concurrent``, the connected cluster's CPUs (and GPUs)
        divided by the per-trial resources; ``self.max_concurrent`` is updated to it, so
        that the engine sizes later waves by what the cluster really holds.
        """
        if not self.auto_concurrency:
            return self.max_concurrent
        import ray

        total = ray.cluster_resources()
        slots = int(total.get("CPU", 0.0) // self.cpus_per_trial)
        if self.gpus_per_trial > 0:
            slots = min(slots, int(total.get("GPU", 0.0) // self.gpus_per_trial))
        self.max_concurrent = max(1, slots)
        return max(1, min(self.max_concurrent, n_requests))

    def close(self) -> None:
        """Shut down a Ray this executor started and remove its temporary storage."""
        if self._started_ray:
            import ray

            ray.shutdown()
            self._started_ray = False
        if self._own_storage:
            shutil.rmtree(self.storage_path, ignore_errors=True)
