"""One cell of a study at run time: a (task, optimizer) pair and its Optuna study.

A cell plans its work items (``(hparams, seed)`` pairs), turns each into an Optuna trial
(the seed and key as user attributes), and tells Optuna each result. Grid cells plan the
expanded grid x seeds; sampled cells ask the sampler for ``n_trials`` configurations and
run each with every seed (paired seeds). Which items remain is decided by the store's
finished keys and attempt counts, so a resumed study runs exactly what is missing.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Mapping
from typing import Any

import optuna
from optuna.trial import TrialState

from labcore.budget import Budget
from labcore.outcomes import Outcome
from labcore.results import EpochMetrics, TrialResult
from studies.optuna_trials import name_objective, new_running_trial, outcome_attrs
from studies.plan import WorkItem, static_configs
from studies.sampling import (
    build_pruner,
    build_sampler,
    distributions,
    trial_key,
)
from studies.spec import StudySpec
from studies.store import CellRecord, TrialRecord
from workers.executors.base import TrialRequest

logger = logging.getLogger(__name__)

_STALE = (TrialState.RUNNING, TrialState.WAITING)
MAX_DUPLICATE_ASKS = 20


def _holds_final(trial: optuna.trial.FrozenTrial) -> bool:
    """Whether an Optuna trial was told a final result (a diverged one may be FAIL)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and trial.user_attrs.get("outcome") in Outcome.finals()


class Cell:
    """Run-time state of one cell (see the module docstring).

    Args:
        spec: The validated study.
        record: The cell's store record.
        storage: Optuna storage on the store's database.
    """

    def __init__(
        self, spec: StudySpec, record: CellRecord, storage: optuna.storages.BaseStorage
    ) -> None:
        self.spec = spec
        self.record = record
        self.opt = spec.optimizer(record.optimizer)
        self.task = spec.task(record.task)
        self.space = spec.space_for(record.optimizer)
        self.dists = distributions(self.space)
        self.budget = Budget(**self.task.budget.model_dump()) if self.task.budget else None
        self.configs = static_configs(spec, record.optimizer)
        self.study = optuna.create_study(
            storage=storage,
            study_name=record.optuna_study_name,
            pruner=build_pruner(spec.pruning),
            direction=spec.objective.direction,
            load_if_exists=True,
        )
        n_existing = len(self.study.get_trials(deepcopy=False))
        if self.configs is None:  # adaptive: Optuna proposes; resumed runs draw afresh
            self.study.sampler = build_sampler(spec.sampler, self.space, seed_offset=n_existing)
        else:  # known configurations are enqueued as fixed trials: no sampler bookkeeping
            self.study.sampler = optuna.samplers.RandomSampler(seed=spec.sampler.seed)
        # Without a pruner, a trial whose configuration is already known gets its Optuna
        # trial only when it starts running (``start``: a real start time, live learning
        # curves); one that never started but has a result (a resume) is added finished.
        # A configuration the sampler has just proposed keeps its live trial.
        self.mirror = spec.pruning.name == "none"
        self._lock = threading.Lock()
        self._reported: dict[str, set[int]] = {}
        self._launched: dict[str, WorkItem] = {}
        self._next_number = n_existing
        self.live: dict[str, optuna.Trial] = {}
        self._configs: dict[int, dict[str, Any]] = {}
        self._asked: dict[int, optuna.Trial] = {}
        self._saturated = False
        self._static_items: list[WorkItem] | None = None

    # ------------------------------------------------------------- preparation
    def prepare(self, finished: Mapping[str, TrialRecord]) -> None:
        """Clean up after an interrupted run and remember sampled configurations.

        Optuna trials left running or waiting by a killed process are finished: told the
        stored value if the store has the key's final result (the process died between
        recording and telling), else failed. Then the cell re-learns which configuration
        each ``config_index`` had.
        """
        self.study.set_user_attr("task", self.record.task)
        self.study.set_user_attr("optimizer", self.record.optimizer)
        self.study.set_user_attr("fixed", dict(self.opt.fixed))
        name_objective(self.study, self.spec.objective.direction, self.spec.objective.metric)
        storage = self.study._storage
        for t in self.study.get_trials(deepcopy=False, states=_STALE):
            key = t.user_attrs.get("key")
            rec = finished.get(key) if key else None
            if rec is None or t.state != TrialState.RUNNING:
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
                continue
            storage.set_trial_user_attr(t._trial_id, "outcome", rec.outcome)
            if rec.outcome == Outcome.PRUNED:
                storage.set_trial_state_values(t._trial_id, TrialState.PRUNED)
            elif rec.value is not None:
                storage.set_trial_state_values(t._trial_id, TrialState.COMPLETE, [rec.value])
            else:
                storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        trials = self.study.get_trials(deepcopy=False)
        for t in trials:
            idx = t.user_attrs.get("config_index")
            if idx is not None and t.params:
                self._configs.setdefault(int(idx), dict(t.params))
        if self.mirror:  # the process died between recording a result and adding it
            # Only trials that hold a final result count as told: a key may have failed
            # (a FAIL trial) before its retry succeeded and the process died.
            told = {t.user_attrs.get("key") for t in trials if _holds_final(t)}
            for rec in finished.values():
                if rec.key not in told:
                    params = {k: v for k, v in rec.hparams.items() if k in self.dists}
                    item = WorkItem(dict(rec.hparams), params, rec.seed, rec.key, None)
                    self._add(item, rec.outcome, rec.value, rec.diverged_at_step, ())
        self._next_number = len(self.study.get_trials(deepcopy=False))

    # ----------------------------------------------------------------- planning
    def _item(self, params: Mapping[str, Any], seed: int, idx: int | None) -> WorkItem:
        hparams = {**self.opt.fixed, **params}
        return WorkItem(hparams, dict(params), seed, trial_key(hparams, seed), idx)

    def all_items(self) -> list[WorkItem]:
        """Every item known so far (for an adaptive sampler: of the configurations asked)."""
        if self.configs is not None:
            if self._static_items is None:
                seeds = self.spec.seeds
                self._static_items = [
                    self._item(p, s, i) for i, p in enumerate(self.configs) for s in seeds
                ]
            return self._static_items
        return [
            self._item(self._configs[i], s, i)
            for i in sorted(self._configs)
            for s in self.spec.seeds
        ]

    def pending(
        self, finished: set[str], attempts: Mapping[str, int], new_configs: int
    ) -> list[WorkItem]:
        """Items still to run: unfinished keys with attempts left, plus new configurations.

        Args:
            finished: Keys with a final result.
            attempts: Attempts so far per key.
            new_configs: How many new configurations a sampled cell may ask for now.
        """
        limit = 1 + self.spec.max_retries
        items = [
            it
            for it in self.all_items()
            if it.key not in finished and attempts.get(it.key, 0) < limit
        ]
        if self.configs is not None:
            return items
        n_trials = self.spec.sampler.n_trials or 0
        known = {json.dumps(c, sort_keys=True) for c in self._configs.values()}
        while new_configs > 0 and len(self._configs) < n_trials and not self._saturated:
            for _ in range(MAX_DUPLICATE_ASKS):
                trial = self.study.ask(self.dists)
                self._next_number += 1
                if json.dumps(trial.params, sort_keys=True) not in known:
                    break
                trial.set_user_attr("duplicate", True)  # the sampler repeated itself
                self.study.tell(trial, state=TrialState.FAIL)
            else:
                logger.warning("cell %s: the sampler keeps repeating itself", self.record.id)
                self._saturated = True
                break
            idx = len(self._configs)
            trial.set_user_attr("config_index", idx)
            self._configs[idx] = dict(trial.params)
            known.add(json.dumps(trial.params, sort_keys=True))
            self._asked[idx] = trial
            items.extend(self._item(trial.params, s, idx) for s in self.spec.seeds)
            new_configs -= 1
        return items

    def exhausted(self, attempts: Mapping[str, int], finished: set[str]) -> int:
        """Keys that failed more often than the retry limit allows."""
        limit = 1 + self.spec.max_retries
        return sum(
            1
            for it in self.all_items()
            if it.key not in finished and attempts.get(it.key, 0) >= limit
        )

    # ---------------------------------------------------------------- launching
    def launch(self, item: WorkItem) -> TrialRequest:
        """Create the item's Optuna trial and return the executor request."""
        trial = None
        if item.config_index is not None and item.seed == self.spec.seeds[0]:
            trial = self._asked.pop(item.config_index, None)
        self._launched[item.key] = item
        if trial is not None:  # the sampler's own proposal: keep its live trial
            trial.set_user_attr("seed", item.seed)
            trial.set_user_attr("key", item.key)
            self.live[item.key] = trial
        elif not self.mirror:  # a pruner needs a live trial: enqueue the known params
            self.study.enqueue_trial(item.params, user_attrs=self._attrs(item))
            self.live[item.key] = self.study.ask(self.dists)
            self._next_number += 1
        return self.request(item.hparams, item.seed, item.key)

    def request(self, hparams: Mapping[str, Any], seed: int, key: str) -> TrialRequest:
        """The executor request of one ``(hparams, seed)`` of this cell."""
        return TrialRequest(
            task=self.record.task,
            optimizer=self.opt.name,  # the registry name; the cell's is the arm's key
            hparams=dict(hparams),
            seed=seed,
            budget=self.budget,
            loss_factor=self.spec.divergence.loss_factor,
            data_dir=self.task.data_dir,
            task_options=dict(self.task.options),
            key=key,
            cell_id=self.record.id,
            schedule=self.spec.schedule.to_schedule(),
        )

    @staticmethod
    def _attrs(item: WorkItem) -> dict[str, Any]:
        attrs: dict[str, Any] = {"seed": item.seed, "key": item.key}
        if item.config_index is not None:
            attrs["config_index"] = item.config_index
        return attrs

    def trial_number(self, key: str) -> int | None:
        """The Optuna trial number the key's result is (or will be) told to."""
        if key in self.live:
            return self.live[key].number
        return self._next_number if key in self._launched else None

    def start(self, key: str) -> int | None:
        """The launched key started running: give it a live RUNNING Optuna trial.

        A key that already has a live trial (the sampler's proposal, or an enqueued one
        for a pruner) keeps it. Returns the Optuna trial number, or None for a key this
        cell did not launch (a confirmation run).
        """
        with self._lock:
            if key in self.live:
                return self.live[key].number
            item = self._launched.get(key)
            if item is None:
                return None
            trial = new_running_trial(self.study, item.params, self.dists, self._attrs(item))
            self.live[key] = trial
            self._next_number += 1
            return trial.number

    def report(self, key: str, epoch: EpochMetrics) -> None:
        """Report an epoch's objective to the key's live Optuna trial (a learning curve).

        Epoch 0 (the initial evaluation) and non-finite values are not reported.
        """
        trial = self.live.get(key)
        value = epoch.metrics.get(self.spec.objective.metric)
        if trial is None or epoch.epoch <= 0 or value is None or not math.isfinite(value):
            return
        with self._lock:
            steps = self._reported.setdefault(key, set())
            if epoch.epoch in steps:
                return
            steps.add(epoch.epoch)
        trial.report(float(value), step=epoch.epoch)

    def should_prune(self, request: TrialRequest, epoch: EpochMetrics) -> bool:
        """Report the epoch's objective to Optuna's pruner (once); True to prune."""
        trial = self.live.get(request.key)
        value = epoch.metrics.get(self.spec.objective.metric)
        if trial is None or value is None or not math.isfinite(value):
            return False
        self.report(request.key, epoch)
        return trial.should_prune()

    # ------------------------------------------------------------------ telling
    def objective_value(self, result: TrialResult) -> float | None:
        """The value told to Optuna: the metric, or for a divergence the initial value."""
        metric = self.spec.objective.metric
        value = result.metrics.get(metric)
        if result.outcome == Outcome.DIVERGED or (
            result.outcome == Outcome.COMPLETE and (value is None or not math.isfinite(value))
        ):
            value = result.initial_metrics.get(metric)
        if result.outcome == Outcome.FAILED or value is None or not math.isfinite(value):
            return None
        return float(value)

    def _add(
        self,
        item: WorkItem,
        outcome: str,
        value: float | None,
        diverged_at_step: int | None,
        epochs: tuple[EpochMetrics, ...],
    ) -> None:
        """Add one finished trial to the Optuna study (mirror mode)."""
        attrs: dict[str, Any] = {**self._attrs(item), "outcome": outcome}
        attrs.update(outcome_attrs(self.spec.objective.metric, outcome, value, diverged_at_step))
        metric = self.spec.objective.metric
        curve = {
            e.epoch: float(e.metrics[metric])
            for e in epochs
            if e.epoch > 0 and math.isfinite(e.metrics.get(metric, math.nan))
        }
        complete = outcome in (Outcome.COMPLETE, Outcome.DIVERGED) and value is not None
        state = TrialState.COMPLETE if complete else TrialState.FAIL
        if outcome == Outcome.PRUNED:
            state = TrialState.PRUNED
        self.study.add_trial(
            optuna.trial.create_trial(
                state=state,
                value=value if state == TrialState.COMPLETE else None,
                params=item.params,
                distributions={k: self.dists[k] for k in item.params if k in self.dists},
                user_attrs=attrs,
                intermediate_values=curve,
            )
        )
        self._next_number += 1

    def tell(self, key: str, result: TrialResult | None, value: float | None) -> int | None:
        """Finish the key's Optuna trial; ``None`` result means cancelled. Returns its number."""
        item = self._launched.pop(key, None)
        if key not in self.live:
            if item is None or result is None:
                return None
            number = self._next_number
            outcome = str(result.outcome)
            self._add(item, outcome, value, result.diverged_at_step, tuple(result.epochs))
            return number
        trial = self.live.pop(key, None)
        if trial is None:
            return None
        self._reported.pop(key, None)
        outcome = "cancelled" if result is None else str(result.outcome)
        step = None if result is None else result.diverged_at_step
        trial.set_user_attr("outcome", outcome)
        for name, attr in outcome_attrs(self.spec.objective.metric, outcome, value, step).items():
            trial.set_user_attr(name, attr)
        if result is not None and result.outcome == Outcome.PRUNED:
            self.study.tell(trial, state=TrialState.PRUNED)
        elif result is not None and value is not None and result.outcome != Outcome.FAILED:
            self.study.tell(trial, values=value)
        else:
            self.study.tell(trial, state=TrialState.FAIL)
        return trial.number

    def abandon(self) -> None:
        """Fail every Optuna trial still open (on cancellation or error)."""
        for key in list(self.live):
            try:
                self.tell(key, None, None)
            except Exception:  # best effort: a resume cleans up too
                logger.debug("could not fail trial %s", key, exc_info=True)
        for trial in self._asked.values():
            try:
                self.study.tell(trial, state=TrialState.FAIL)
            except Exception:
                logger.debug("could not fail trial %d", trial.number, exc_info=True)
        self._asked.clear()
        self._launched.clear()
