"""Trial: the driver's record of one trial (status, results, checkpoints, failures)."""

from __future__ import annotations

import dataclasses
import os
import shutil
from typing import Any

from ember.air.checkpoint import Checkpoint
from ember.air.config import CheckpointConfig

PENDING = "PENDING"
RUNNING = "RUNNING"
PAUSED = "PAUSED"
TERMINATED = "TERMINATED"
ERROR = "ERROR"


@dataclasses.dataclass
class Trial:
    """Everything the controller knows about a trial; pickled into the experiment state."""

    trial_id: str
    trainable_name: str
    config: dict[str, Any]
    experiment_tag: str
    local_path: str
    resources: dict[str, float]
    status: str = PENDING
    last_result: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_failures: int = 0
    error_msg: str | None = None
    error: BaseException | None = None
    checkpoints: list[tuple[str, dict[str, Any]]] = dataclasses.field(
        default_factory=list
    )
    #: (checkpoint path, new config) a scheduler (PBT) asked the trial to restart with
    pending_restore: tuple[str, dict[str, Any]] | None = None
    restore_path: str | None = None
    #: TuneConfig.trial_name_creator's name for it
    custom_name: str | None = None

    @property
    def trial_name(self) -> str:
        return self.custom_name or f"{self.trainable_name}_{self.trial_id}"

    def __str__(self) -> str:
        return self.trial_name

    @property
    def evaluated_params(self) -> dict[str, Any]:
        return self.config

    @property
    def is_finished(self) -> bool:
        return self.status in (TERMINATED, ERROR)

    @property
    def latest_checkpoint_path(self) -> str | None:
        if self.restore_path is not None and not self.checkpoints:
            return self.restore_path
        if not self.checkpoints:
            return self.restore_path
        return os.path.join(self.local_path, self.checkpoints[-1][0])

    @property
    def checkpoint(self) -> Checkpoint | None:
        path = self.latest_checkpoint_path
        return Checkpoint(path) if path else None

    def next_checkpoint_index(self) -> int:
        if not self.checkpoints:
            return 0
        return int(self.checkpoints[-1][0].rsplit("_", 1)[1]) + 1

    def add_checkpoint(
        self, name: str, metrics: dict[str, Any], policy: CheckpointConfig
    ) -> None:
        """Record a new checkpoint; delete those num_to_keep drops (never the latest)."""
        self.checkpoints.append((name, metrics))
        keep = policy.num_to_keep
        if keep is None or len(self.checkpoints) <= keep:
            return
        latest = self.checkpoints[-1]
        attr = policy.checkpoint_score_attribute
        ranked = list(enumerate(self.checkpoints))
        if attr is not None:
            sign = 1 if policy.checkpoint_score_order == "max" else -1
            ranked.sort(key=lambda e: (sign * _score(e[1][1], attr, sign), e[0]))
        kept = {i for i, _ in ranked[-keep:]}
        kept.add(len(self.checkpoints) - 1)
        for i, (dir_name, _) in enumerate(self.checkpoints):
            if i not in kept:
                shutil.rmtree(os.path.join(self.local_path, dir_name), True)
        self.checkpoints = [c for i, c in enumerate(self.checkpoints) if i in kept]
        assert self.checkpoints[-1] is latest

    def best_checkpoints(self) -> list[tuple[Checkpoint, dict[str, Any]]]:
        return [
            (Checkpoint(os.path.join(self.local_path, name)), metrics)
            for name, metrics in self.checkpoints
        ]


def _score(metrics: dict[str, Any], attr: str, sign: int) -> float:
    value = metrics.get(attr)
    if value is None:
        return -float("inf") * sign
    return float(value)
