"""ember.tune: hyperparameter search over trials run as actors (Ray Tune's API)."""

from __future__ import annotations

from ember.air import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    Result,
    RunConfig,
    TuneContext,
    get_checkpoint,
    get_context,
    report,
)
from ember.tune.controller import TuneError
from ember.tune.result_grid import ResultGrid
from ember.tune.schedulers import create_scheduler
from ember.tune.search import create_searcher
from ember.tune.search.sample import (
    choice,
    grid_search,
    lograndint,
    loguniform,
    qlograndint,
    qloguniform,
    qrandint,
    qrandn,
    quniform,
    randint,
    randn,
    sample_from,
    uniform,
)
from ember.tune.stopper import Stopper
from ember.tune.trainable import (
    PlacementGroupFactory,
    Trainable,
    with_parameters,
    with_resources,
)
from ember.tune.tuner import TuneConfig, Tuner


class Callback:
    """Hooks the controller calls on trial events (on_trial_start/result/complete/error)."""

    def on_trial_start(self, iteration: int, trials: list[object], trial: object, **info: object) -> None:  # fmt: skip
        pass

    def on_trial_result(self, iteration: int, trials: list[object], trial: object, result: dict[str, object], **info: object) -> None:  # fmt: skip
        pass

    def on_trial_complete(self, iteration: int, trials: list[object], trial: object, **info: object) -> None:  # fmt: skip
        pass

    def on_trial_error(self, iteration: int, trials: list[object], trial: object, **info: object) -> None:  # fmt: skip
        pass


__all__ = [
    "Callback",
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "PlacementGroupFactory",
    "Result",
    "ResultGrid",
    "RunConfig",
    "Stopper",
    "Trainable",
    "TuneConfig",
    "TuneContext",
    "TuneError",
    "Tuner",
    "choice",
    "create_scheduler",
    "create_searcher",
    "get_checkpoint",
    "get_context",
    "grid_search",
    "lograndint",
    "loguniform",
    "qlograndint",
    "qloguniform",
    "qrandint",
    "qrandn",
    "quniform",
    "randint",
    "randn",
    "report",
    "sample_from",
    "uniform",
    "with_parameters",
    "with_resources",
]
