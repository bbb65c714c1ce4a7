"""ember.train: data-parallel training on worker groups (Ray Train's API)."""

from __future__ import annotations

from ember.air import (
    Checkpoint,
    CheckpointConfig,
    FailureConfig,
    Result,
    RunConfig,
    TrainContext,
)
from ember.air.train_api import (
    SessionMisconfigurationError,
    get_checkpoint,
    get_context,
    report,
)
from ember.train.config import ScalingConfig
from ember.train.shard import get_dataset_shard
from ember.train.trainer import DataParallelTrainer, TrainingFailedError

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "DataParallelTrainer",
    "FailureConfig",
    "Result",
    "RunConfig",
    "ScalingConfig",
    "SessionMisconfigurationError",
    "TrainContext",
    "TrainingFailedError",
    "get_checkpoint",
    "get_context",
    "get_dataset_shard",
    "report",
]
