"""The controller loop: start trial actors, collect results, apply the scheduler's decisions.

One driver-side loop owns every trial. It starts trials while resources and
max_concurrent_trials allow, waits for the next result of any running trial,
and hands it to the stopper, the search algorithm and the scheduler; a STOP
ends the trial, a PAUSE stops its actor (a PBT exploit restarts it from another
trial's checkpoint), CONTINUE asks for the next result. An actor that dies or a
trainable that raises is retried from the latest checkpoint up to
FailureConfig.max_failures. The experiment state is saved after every trial
event, so Tuner.restore can resume a run whose driver was killed.
"""

from __future__ import annotations

import datetime
import json
import os
import time
import traceback
from collections.abc import Callable
from typing import Any

import ember
from ember.air.config import RunConfig
from ember.air.session import TrialInfo
from ember.tune import experiment_state, trial as trial_mod, trial_files
from ember.tune.progress import ConsoleReporter
from ember.tune.schedulers.trial_scheduler import TrialScheduler
from ember.tune.search.searcher import SearchAlgorithm
from ember.tune.search.variant_generator import experiment_tag
from ember.tune.stopper import as_stopper
from ember.tune.trainable import is_class_trainable, resources_of, trainable_name
from ember.tune.trial import Trial
from ember.tune.trial_runner import FINISHED, TrialRunner

_RESULT_MARK = ".tune_result.json"


class TuneError(Exception):
    """A run ended because of a trial's failure (FailureConfig(fail_fast=True))."""


class _Running:
    """A live trial: its actor and the in-flight train() call."""

    def __init__(self, actor: Any, ref: Any) -> None:
        self.actor = actor
        self.ref = ref


class TuneController:
    """Drives every trial of one experiment to its end."""

    def __init__(
        self,
        trainable: Any,
        experiment_path: str,
        run_config: RunConfig,
        search_alg: SearchAlgorithm,
        scheduler: TrialScheduler,
        metric: str | None,
        mode: str | None,
        max_concurrent: int,
        time_budget_s: float | None,
        settings: dict[str, Any],
        trials: list[Trial] | None = None,
        run_id: str | None = None,
        clock: Callable[[], float] = time.monotonic,
        name_creator: Callable[[Trial], str] | None = None,
        dirname_creator: Callable[[Trial], str] | None = None,
    ) -> None:
        self.name_creator = name_creator
        self.dirname_creator = dirname_creator
        self.trainable = trainable
        self.name = trainable_name(trainable)
        self.experiment_path = experiment_path
        self.experiment_name = os.path.basename(experiment_path)
        self.run_config = run_config
        self.search_alg = search_alg
        self.scheduler = scheduler
        self.metric, self.mode = metric, mode
        self.max_concurrent = max_concurrent
        self.time_budget_s = time_budget_s
        self.settings = settings
        self.trials: list[Trial] = list(trials or [])
        self.run_id = run_id or os.urandom(3).hex()[:5]
        self.stopper = as_stopper(run_config.stop)
        self.clock = clock
        self.running: dict[str, _Running] = {}
        self.failure_config = run_config.failure_config
        self.checkpoint_config = run_config.checkpoint_config
        self._cluster = ember.cluster_resources()
        verbose = 2 if run_config.verbose is None else int(run_config.verbose)
        self.reporter = ConsoleReporter(
            verbose, metric, mode,
            (self._cluster.get("CPU", 0.0), self._cluster.get("GPU", 0.0)),
        )  # fmt: skip
        self._callbacks = list(run_config.callbacks or [])

    # -- what schedulers see -------------------------------------------------
    def get_trials(self) -> list[Trial]:
        return self.trials

    def get_live_trials(self) -> list[Trial]:
        return [t for t in self.trials if not t.is_finished]

    def stop_trial(self, trial: Trial) -> None:
        """End a trial a scheduler gave up on (running or paused)."""
        if trial.is_finished:
            return
        self._end_actor(trial, graceful=True)
        trial.status = trial_mod.TERMINATED
        self.scheduler.on_trial_complete(self, trial, trial.last_result)
        self.search_alg.on_trial_complete(trial.trial_id, trial.last_result)
        self.reporter.trial_ended(trial)
        self._save()

    # -- the loop ------------------------------------------------------------
    def run(self) -> list[Trial]:
        start = self.clock()
        for trial in self.trials:
            if not trial.is_finished:
                self.scheduler.on_trial_add(self, trial)
        try:
            while True:
                out_of_time = (
                    self.time_budget_s is not None
                    and self.clock() - start >= self.time_budget_s
                )
                if out_of_time or self.stopper.stop_all():
                    self._stop_everything()
                    break
                self._fill_slots()
                if not self.running:
                    # nothing runs and nothing could start: done (or a searcher
                    # that suggests nothing while no trial runs)
                    break
                self._wait_and_process()
                self.reporter.status(self.trials)
        finally:
            for trial_id in list(self.running):
                self._end_actor(self._trial(trial_id), graceful=False)
            self._save()
        self.reporter.status(self.trials, force=True)
        return self.trials

    def _trial(self, trial_id: str) -> Trial:
        for trial in self.trials:
            if trial.trial_id == trial_id:
                return trial
        raise KeyError(trial_id)

    # -- starting trials -----------------------------------------------------
    def _fits(self, resources: dict[str, float]) -> bool:
        if not self.running:
            return True
        if self.max_concurrent and len(self.running) >= self.max_concurrent:
            return False
        for key, amount in resources.items():
            used = sum(self._trial(t).resources.get(key, 0.0) for t in self.running)
            if used + amount > self._cluster.get(key, 0.0) + 1e-9:
                return False
        return True

    def _fill_slots(self) -> None:
        while True:
            if self.max_concurrent and len(self.running) >= self.max_concurrent:
                return
            pending = any(t.status == trial_mod.PENDING for t in self.trials)
            paused = any(t.status == trial_mod.PAUSED for t in self.trials)
            if not pending and self._new_trial() is None and not paused:
                return
            choice = self.scheduler.choose_trial_to_run(self)
            if choice is None or not self._fits(choice.resources):
                return
            self._start(choice)

    def _new_trial(self) -> Trial | None:
        index = len(self.trials)
        trial_id = f"{self.run_id}_{index:05d}"
        suggestion = self.search_alg.next_trial(trial_id)
        if suggestion is None:
            return None
        config, resolved = suggestion
        tag = experiment_tag(index, resolved)
        date = datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S")
        dir_name = f"{self.name}_{trial_id}_{tag}"[:120] + f"_{date}"
        trial = Trial(
            trial_id=trial_id,
            trainable_name=self.name,
            config=config,
            experiment_tag=tag,
            local_path=os.path.join(self.experiment_path, dir_name.replace("/", "_")),
            resources=resources_of(self.trainable, config),
        )
        if self.name_creator is not None:
            trial.custom_name = str(self.name_creator(trial))
        if self.dirname_creator is not None:
            name = str(self.dirname_creator(trial))
            trial.local_path = os.path.join(self.experiment_path, name)
        self.trials.append(trial)
        trial_files.write_params(trial.local_path, config)
        self.scheduler.on_trial_add(self, trial)
        self._save()
        return trial

    def _start(self, trial: Trial) -> None:
        restore = trial.latest_checkpoint_path
        if trial.pending_restore is not None:
            restore, trial.config = trial.pending_restore[0], trial.pending_restore[1]
            trial.pending_restore = None
            trial.restore_path = restore
            trial_files.write_params(trial.local_path, trial.config)
        prior = _result_mark(restore) if restore else {}
        if not restore and trial.last_result:
            # resumed (after a pause) without a checkpoint: the trainable starts
            # over, its iterations keep counting (so milestones are reached)
            prior = {
                k: trial.last_result[k]
                for k in ("training_iteration", "time_total_s")
                if k in trial.last_result
            }
        prior["next_checkpoint_index"] = trial.next_checkpoint_index()
        prior["experiment_tag"] = trial.experiment_tag
        info = TrialInfo(
            name=trial.trial_name, id=trial.trial_id, dir=trial.local_path,
            experiment_name=self.experiment_name, resources=dict(trial.resources),
            storage_path=str(self.run_config.storage_path),
        )  # fmt: skip
        res = dict(trial.resources)
        options: dict[str, Any] = {
            "num_cpus": res.pop("CPU", 0.0),
            "num_gpus": res.pop("GPU", 0.0),
            "max_restarts": 0,
        }
        if "memory" in res:
            options["memory"] = res.pop("memory")
        if res:
            options["resources"] = res
        actor = (
            ember.remote(TrialRunner)
            .options(**options)
            .remote(self.trainable, trial.config, info, restore, prior)
        )
        self.running[trial.trial_id] = _Running(actor, actor.train.remote())
        trial.status = trial_mod.RUNNING
        self.reporter.trial_started(trial)
        self._callback("on_trial_start", trial)
        self._save()

    # -- results -------------------------------------------------------------
    def _wait_and_process(self) -> None:
        refs = {live.ref: tid for tid, live in self.running.items()}
        ready, _ = ember.wait(list(refs), num_returns=1, timeout=0.5)
        for ref in ready:
            trial = self._trial(refs[ref])
            try:
                result = ember.get(ref)
            except Exception as exc:  # noqa: BLE001  (the trainable raised or its actor died)
                self._on_failure(trial, exc)
                continue
            if isinstance(result, str) and result == FINISHED:
                trial.last_result["done"] = True
                self._complete(trial)
                continue
            self._on_result(trial, result)

    def _on_result(self, trial: Trial, result: dict[str, Any]) -> None:
        live = self.running[trial.trial_id]
        policy = self.checkpoint_config
        assert policy is not None
        freq = policy.checkpoint_frequency
        if freq and is_class_trainable(self.trainable) and result["training_iteration"] % freq == 0:  # fmt: skip
            result["checkpoint_dir_name"] = ember.get(live.actor.save.remote())
        trial.last_result = result
        trial_files.append_result(trial.local_path, result)
        if result.get("checkpoint_dir_name"):
            self._record_checkpoint(trial, result["checkpoint_dir_name"], result)
        self.search_alg.on_trial_result(trial.trial_id, result)
        self._callback("on_trial_result", trial, result=result)
        decision = self.scheduler.on_trial_result(self, trial, result)
        if self.stopper(trial.trial_id, result) or result.get("done"):
            decision = TrialScheduler.STOP
        if decision == TrialScheduler.STOP:
            self._complete(trial)
        elif decision == TrialScheduler.PAUSE:
            self._pause(trial)
        else:
            live.ref = live.actor.train.remote()

    def _record_checkpoint(
        self, trial: Trial, name: str, result: dict[str, Any]
    ) -> None:
        mark = {
            k: result[k] for k in ("training_iteration", "time_total_s") if k in result
        }
        with open(os.path.join(trial.local_path, name, _RESULT_MARK), "w") as f:
            json.dump(mark, f)
        policy = self.checkpoint_config
        assert policy is not None
        trial.add_checkpoint(name, result, policy)
        self._save()

    def _save_class_checkpoint(self, trial: Trial) -> None:
        live = self.running.get(trial.trial_id)
        if live is None or not is_class_trainable(self.trainable):
            return
        name = ember.get(live.actor.save.remote())
        if name:
            trial.last_result["checkpoint_dir_name"] = name
            self._record_checkpoint(trial, name, trial.last_result)

    def _complete(self, trial: Trial) -> None:
        policy = self.checkpoint_config
        if policy is not None and policy.checkpoint_at_end:
            self._save_class_checkpoint(trial)
        self._end_actor(trial, graceful=True)
        trial.status = trial_mod.TERMINATED
        self.scheduler.on_trial_complete(self, trial, trial.last_result)
        self.search_alg.on_trial_complete(trial.trial_id, trial.last_result)
        self.reporter.trial_ended(trial)
        self._callback("on_trial_complete", trial)
        self._save()

    def _pause(self, trial: Trial) -> None:
        if trial.pending_restore is None:
            self._save_class_checkpoint(trial)
        self._end_actor(trial, graceful=True)
        trial.status = trial_mod.PENDING if trial.pending_restore else trial_mod.PAUSED
        self._save()

    def _on_failure(self, trial: Trial, exc: BaseException) -> None:
        self._end_actor(trial, graceful=False)
        trial.num_failures += 1
        assert self.failure_config is not None
        allowed = self.failure_config.max_failures
        if allowed < 0 or trial.num_failures <= allowed:
            trial.status = trial_mod.PENDING
            self._save()
            return
        trial.status = trial_mod.ERROR
        trial.error = exc
        trial.error_msg = "".join(
            traceback.format_exception_only(type(exc), exc)
        ).strip()
        with open(os.path.join(trial.local_path, "error.txt"), "w") as f:
            f.write(
                "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            )
        self.scheduler.on_trial_error(self, trial)
        self.search_alg.on_trial_complete(trial.trial_id, None, error=True)
        self.reporter.trial_ended(trial)
        self._callback("on_trial_error", trial)
        self._save()
        if self.failure_config.fail_fast:
            raise TuneError(
                f"Trial {trial.trial_name} failed: {trial.error_msg}"
            ) from exc

    def _end_actor(self, trial: Trial, graceful: bool) -> None:
        live = self.running.pop(trial.trial_id, None)
        if live is None:
            return
        if graceful:
            try:
                ember.get(live.actor.stop.remote(), timeout=30)
            except Exception:  # noqa: BLE001, S110  (cleanup() failing does not fail the trial)
                pass
        ember.kill(live.actor)

    def _stop_everything(self) -> None:
        for trial_id in list(self.running):
            trial = self._trial(trial_id)
            self._end_actor(trial, graceful=True)
            trial.status = trial_mod.TERMINATED
            self.scheduler.on_trial_complete(self, trial, trial.last_result)
        for trial in self.trials:
            if trial.status in (trial_mod.PENDING, trial_mod.PAUSED):
                trial.status = trial_mod.TERMINATED

    def _callback(self, hook: str, trial: Trial, **info: Any) -> None:
        for callback in self._callbacks:
            method = getattr(callback, hook, None)
            if method is not None:
                method(iteration=0, trials=self.trials, trial=trial, **info)

    def _save(self) -> None:
        experiment_state.save_state(
            self.experiment_path,
            {
                "trials": self.trials,
                "search_alg": self.search_alg,
                "scheduler": self.scheduler,
                "run_id": self.run_id,
            },
        )


def _result_mark(checkpoint_path: str) -> dict[str, Any]:
    path = os.path.join(checkpoint_path, _RESULT_MARK)
    if not os.path.exists(path):
        return {}
    with open(path) as f:
        mark: dict[str, Any] = json.load(f)
    return mark
