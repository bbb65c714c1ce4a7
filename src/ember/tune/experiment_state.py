"""The experiment state on disk: what Tuner.restore reads back after the driver died."""

from __future__ import annotations

import json
import os
import time
from typing import Any

import cloudpickle

STATE_FILE = "experiment_state.pkl"
SUMMARY_FILE = "experiment_state.json"
TUNER_FILE = "tuner.pkl"


def _atomic_write(path: str, data: bytes) -> None:
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def save_tuner(experiment_path: str, settings: dict[str, Any]) -> None:
    """The Tuner's settings (param_space, tune_config, run_config), without the trainable."""
    # the run's folders are the user's alone (0700, as ember's private folders)
    os.makedirs(os.path.dirname(experiment_path), mode=0o700, exist_ok=True)
    os.makedirs(experiment_path, mode=0o700, exist_ok=True)
    _atomic_write(
        os.path.join(experiment_path, TUNER_FILE), cloudpickle.dumps(settings)
    )


def load_tuner(experiment_path: str) -> dict[str, Any]:
    with open(os.path.join(experiment_path, TUNER_FILE), "rb") as f:
        settings: dict[str, Any] = cloudpickle.load(f)
    return settings


def save_state(experiment_path: str, state: dict[str, Any]) -> None:
    """Trials, search algorithm and scheduler (pickled), plus a readable summary."""
    trials = state["trials"]
    for trial in trials:
        if trial.error is not None:
            try:
                cloudpickle.dumps(trial.error)
            except Exception:  # noqa: BLE001  (an unpicklable error is kept as its message)
                trial.error = RuntimeError(trial.error_msg or repr(trial.error))
    _atomic_write(os.path.join(experiment_path, STATE_FILE), cloudpickle.dumps(state))
    summary = {
        "timestamp": time.time(),
        "trials": [
            {"trial_id": t.trial_id, "status": t.status, "path": t.local_path,
             "num_failures": t.num_failures,
             "checkpoints": [name for name, _ in t.checkpoints]}
            for t in trials
        ],
    }  # fmt: skip
    _atomic_write(
        os.path.join(experiment_path, SUMMARY_FILE),
        json.dumps(summary, indent=1).encode(),
    )


def load_state(experiment_path: str) -> dict[str, Any]:
    with open(os.path.join(experiment_path, STATE_FILE), "rb") as f:
        state: dict[str, Any] = cloudpickle.load(f)
    return state


def can_restore(experiment_path: str) -> bool:
    path = os.path.abspath(os.path.expanduser(os.fspath(experiment_path)))
    return os.path.exists(os.path.join(path, STATE_FILE)) and os.path.exists(
        os.path.join(path, TUNER_FILE)
    )
