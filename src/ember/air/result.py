"""Result: the outcome of one trial or training run."""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any

from ember.air.checkpoint import Checkpoint


@dataclasses.dataclass
class Result:
    """Last metrics, latest checkpoint, error and history of one run."""

    metrics: dict[str, Any] | None
    checkpoint: Checkpoint | None
    error: BaseException | None
    path: str
    metrics_dataframe: Any = None
    best_checkpoints: list[tuple[Checkpoint, dict[str, Any]]] | None = None
    filesystem: str = "local"

    @property
    def config(self) -> dict[str, Any] | None:
        """The trial's configuration (from its metrics)."""
        if not self.metrics:
            return None
        config: dict[str, Any] | None = self.metrics.get("config")
        return config

    @classmethod
    def from_path(cls, path: str) -> Result:
        """Rebuild a Result from a trial directory's result.json and checkpoints."""
        file = os.path.join(path, "result.json")
        if not os.path.exists(file):
            raise RuntimeError(f"No result.json found in {path!r}")
        with open(file) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        frame = None
        try:
            import pandas

            frame = pandas.DataFrame(rows)
        except ImportError:  # pragma: no cover - pandas comes with ember's deps
            pass
        best = [
            (Checkpoint(os.path.join(path, r["checkpoint_dir_name"])), r)
            for r in rows
            if r.get("checkpoint_dir_name")
            and os.path.isdir(os.path.join(path, r["checkpoint_dir_name"]))
        ]
        return cls(
            metrics=rows[-1] if rows else {},
            checkpoint=best[-1][0] if best else None,
            error=None,
            path=path,
            metrics_dataframe=frame,
            best_checkpoints=best,
        )

    def __repr__(self) -> str:
        shown = {k: v for k, v in (self.metrics or {}).items() if k not in _AUTO_FIELDS}
        parts = [
            f"  metrics={shown!r}",
            f"  path={self.path!r}",
            "  filesystem='local'",
        ]
        parts.append(f"  checkpoint={self.checkpoint!r}")
        if self.error is not None:
            parts.append(f"  error={self.error!r}")
        return "Result(\n" + ",\n".join(parts) + "\n)"


#: The fields Tune adds to every result (left out of Result's repr, as Ray does).
_AUTO_FIELDS = frozenset(
    {
        "timestamp", "checkpoint_dir_name", "should_checkpoint", "done",
        "training_iteration", "trial_id", "date", "time_this_iter_s", "time_total_s",
        "pid", "hostname", "node_ip", "config", "time_since_restore",
        "iterations_since_restore", "experiment_tag",
    }
)  # fmt: skip
