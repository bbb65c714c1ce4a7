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

__all__ = [
    "Checkpoint",
    "CheckpointConfig",
    "FailureConfig",
    "Result",
    "RunConfig",
    "SessionMisconfigurationError",
    "TrainContext",
    "get_checkpoint",
    "get_context",
    "report",
]
