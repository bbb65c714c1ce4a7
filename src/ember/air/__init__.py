"""The pieces Tune and Train share: checkpoints, the run configuration and report()."""

from __future__ import annotations

from ember.air.checkpoint import Checkpoint
from ember.air.config import CheckpointConfig, FailureConfig, RunConfig
from ember.air.result import Result
from ember.air.session import (
    TrainContext,
    TuneContext,
    get_checkpoint,
    get_context,
    report,
)

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "RunConfig",
    "TrainContext",
    "TuneContext",
    "get_checkpoint",
    "get_context",
    "report",
]
