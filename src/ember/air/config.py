"""The run configuration shared by Tune and Train: RunConfig, CheckpointConfig, FailureConfig."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

#: Where runs are stored when RunConfig.storage_path is not given.
DEFAULT_STORAGE_PATH = os.path.join("~", "ember_results")


@dataclasses.dataclass
class CheckpointConfig:
    """Which checkpoints a run keeps, and when a class trainable saves one."""

    num_to_keep: int | None = None
    checkpoint_score_attribute: str | None = None
    checkpoint_score_order: str = "max"
    checkpoint_frequency: int = 0
    checkpoint_at_end: bool | None = None

    def __post_init__(self) -> None:
        if self.num_to_keep is not None and self.num_to_keep <= 0:
            raise ValueError(
                f"Received invalid num_to_keep: {self.num_to_keep}. "
                "Must be None or an integer >= 1."
            )
        if self.checkpoint_score_order not in ("max", "min"):
            raise ValueError(
                "checkpoint_score_order must be 'max' or 'min', got "
                f"{self.checkpoint_score_order!r}"
            )
        if self.checkpoint_frequency < 0:
            raise ValueError(
                f"checkpoint_frequency must be >= 0, got {self.checkpoint_frequency}"
            )


@dataclasses.dataclass
class FailureConfig:
    """How often a failed trial is retried (-1: forever); fail_fast ends the run."""

    max_failures: int = 0
    fail_fast: bool | str = False


@dataclasses.dataclass
class RunConfig:
    """Name, storage, stopping, checkpoint and failure policy of a run."""

    name: str | None = None
    storage_path: str | None = None
    storage_filesystem: Any = None
    failure_config: FailureConfig | None = None
    checkpoint_config: CheckpointConfig | None = None
    sync_config: Any = None
    verbose: int | None = None
    stop: Any = None
    callbacks: list[Any] | None = None
    progress_reporter: Any = None
    log_to_file: bool | str | tuple[str, str] = False

    def __post_init__(self) -> None:
        if self.storage_filesystem is not None:
            raise ValueError(
                "ember stores runs on the local filesystem only; leave "
                "storage_filesystem unset"
            )
        if self.storage_path is None:
            self.storage_path = os.environ.get(
                "EMBER_STORAGE_PATH", os.path.expanduser(DEFAULT_STORAGE_PATH)
            )
        self.storage_path = os.path.abspath(os.path.expanduser(self.storage_path))
        if self.failure_config is None:
            self.failure_config = FailureConfig()
        if self.checkpoint_config is None:
            self.checkpoint_config = CheckpointConfig()
