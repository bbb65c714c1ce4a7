"""Tuner and TuneConfig: the entry point of a hyperparameter search."""

from __future__ import annotations

import copy
import dataclasses
import datetime
import os
import warnings
from collections.abc import Callable
from typing import Any

import ember
from ember.air.config import RunConfig
from ember.tune import experiment_state, trial as trial_mod
from ember.tune.controller import TuneController
from ember.tune.result_grid import ResultGrid
from ember.tune.schedulers.trial_scheduler import FIFOScheduler, TrialScheduler
from ember.tune.search.searcher import (
    BasicVariantGenerator,
    SearchAlgorithm,
    Searcher,
    SearchGenerator,
)
from ember.tune.trainable import trainable_name


@dataclasses.dataclass
class TuneConfig:
    """What to optimize (metric, mode), how (search_alg, scheduler) and how many trials."""

    mode: str | None = None
    metric: str | None = None
    search_alg: Any = None
    scheduler: TrialScheduler | None = None
    num_samples: int = 1
    max_concurrent_trials: int | None = None
    time_budget_s: float | datetime.timedelta | None = None
    reuse_actors: bool = False
    trial_name_creator: Callable[[Any], str] | None = None
    trial_dirname_creator: Callable[[Any], str] | None = None

    def __post_init__(self) -> None:
        if self.mode is not None and self.mode not in ("min", "max"):
            raise ValueError(f"`mode` must be 'min' or 'max', got {self.mode!r}")
        if self.num_samples == -1:
            raise ValueError(
                "num_samples=-1 (infinite sampling) is not supported by ember"
            )
        if self.num_samples < 1:
            raise ValueError(f"num_samples must be >= 1, got {self.num_samples}")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise ValueError("max_concurrent_trials must be None or >= 1")
        if self.reuse_actors:
            warnings.warn(
                "ember's Tune does not reuse trial actors: each trial gets a fresh "
                "one (reuse_actors=True is ignored)",
                stacklevel=3,
            )


def _search_alg(config: TuneConfig, space: dict[str, Any]) -> SearchAlgorithm:
    alg = config.search_alg
    if alg is None:
        alg = BasicVariantGenerator(max_concurrent=config.max_concurrent_trials or 0)
    if isinstance(alg, Searcher):
        alg = SearchGenerator(alg)
    if not isinstance(alg, SearchAlgorithm):
        raise TypeError(f"search_alg must be a Searcher, got {type(alg).__name__}")
    alg.set_search_properties(config.metric, config.mode, space)
    alg.add_configurations(space, config.num_samples)
    return alg


def _scheduler(config: TuneConfig) -> TrialScheduler:
    scheduler = config.scheduler or FIFOScheduler()
    if not scheduler.set_search_properties(config.metric, config.mode):
        raise ValueError(
            "The scheduler's metric/mode differ from TuneConfig's: set them in one place"
        )
    return scheduler


class Tuner:
    """Run a trainable over a param_space: ``Tuner(fn, param_space=...).fit()``."""

    def __init__(
        self,
        trainable: Any = None,
        *,
        param_space: dict[str, Any] | None = None,
        tune_config: TuneConfig | None = None,
        run_config: RunConfig | None = None,
        _restored: dict[str, Any] | None = None,
    ) -> None:
        if trainable is None:
            raise ValueError(
                "Tuner needs a trainable (a function or a Trainable class)"
            )
        if isinstance(trainable, str):
            raise ValueError("ember's Tuner takes the trainable itself, not its name")
        if param_space is not None and not isinstance(param_space, dict):
            raise TypeError(
                f"param_space must be a dict, got {type(param_space).__name__}"
            )
        self._trainable = trainable
        self._param_space = copy.deepcopy(param_space or {})
        self._tune_config = tune_config or TuneConfig()
        self._run_config = run_config or RunConfig()
        self._restored = _restored
        name = self._run_config.name or (
            f"{trainable_name(trainable)}_{datetime.datetime.now():%Y-%m-%d_%H-%M-%S}"
        )
        self._experiment_path = os.path.join(str(self._run_config.storage_path), name)

    def fit(self) -> ResultGrid:
        """Run every trial to its end; the ResultGrid (trial errors do not raise)."""
        if not ember.is_initialized():
            ember.init()
        config = self._tune_config
        budget = config.time_budget_s
        if isinstance(budget, datetime.timedelta):
            budget = budget.total_seconds()
        experiment_state.save_tuner(
            self._experiment_path,
            {"param_space": self._param_space, "tune_config": config,
             "run_config": self._run_config},
        )  # fmt: skip
        state = self._restored or {}
        controller = TuneController(
            trainable=self._trainable,
            experiment_path=self._experiment_path,
            run_config=self._run_config,
            search_alg=state.get("search_alg")
            or _search_alg(config, self._param_space),
            scheduler=state.get("scheduler") or _scheduler(config),
            metric=config.metric,
            mode=config.mode,
            max_concurrent=config.max_concurrent_trials or 0,
            time_budget_s=budget,
            settings={},
            trials=state.get("trials"),
            run_id=state.get("run_id"),
            name_creator=config.trial_name_creator,
            dirname_creator=config.trial_dirname_creator,
        )
        trials = controller.run()
        self._restored = None
        return ResultGrid(trials, self._experiment_path, config.metric, config.mode)

    def get_results(self) -> ResultGrid:
        """The results of the experiment as it stands on disk."""
        state = experiment_state.load_state(self._experiment_path)
        config = self._tune_config
        return ResultGrid(
            state["trials"], self._experiment_path, config.metric, config.mode
        )

    @classmethod
    def can_restore(
        cls, path: str | os.PathLike[str], storage_filesystem: Any = None
    ) -> bool:
        """Whether ``path`` holds an experiment Tuner.restore can resume."""
        return experiment_state.can_restore(os.fspath(path))

    @classmethod
    def restore(
        cls,
        path: str | os.PathLike[str],
        trainable: Any,
        resume_unfinished: bool = True,
        resume_errored: bool = False,
        restart_errored: bool = False,
        param_space: dict[str, Any] | None = None,
        storage_filesystem: Any = None,
    ) -> Tuner:
        """A Tuner that resumes the experiment at ``path`` when fit() is called.

        Finished trials keep their results; unfinished ones resume from their latest
        checkpoint; errored ones resume (resume_errored) or start over (restart_errored).
        """
        path = os.path.abspath(os.path.expanduser(os.fspath(path)))
        if not experiment_state.can_restore(path):
            raise ValueError(
                f"Could not find an experiment to restore at {path!r} (no experiment "
                "state there). Check Tuner.can_restore(path) first."
            )
        settings = experiment_state.load_tuner(path)
        state = experiment_state.load_state(path)
        for trial in state["trials"]:
            _reset_for_restore(
                trial, resume_unfinished, resume_errored, restart_errored
            )
        run_config = dataclasses.replace(
            settings["run_config"],
            name=os.path.basename(path),
            storage_path=os.path.dirname(path),
        )
        return cls(
            trainable,
            param_space=param_space or settings["param_space"],
            tune_config=settings["tune_config"],
            run_config=run_config,
            _restored=state,
        )


def _reset_for_restore(
    trial: trial_mod.Trial,
    unfinished: bool,
    resume_errored: bool,
    restart_errored: bool,
) -> None:
    if trial.status in (trial_mod.RUNNING, trial_mod.PENDING, trial_mod.PAUSED):
        trial.status = trial_mod.PENDING if unfinished else trial_mod.TERMINATED
    elif trial.status == trial_mod.ERROR and (resume_errored or restart_errored):
        trial.status = trial_mod.PENDING
        trial.error = None
        trial.error_msg = None
        trial.num_failures = 0
        if restart_errored:
            trial.checkpoints = []
            trial.restore_path = None
            trial.last_result = {}
