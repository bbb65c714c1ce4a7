"""Per-trial files: params.json, params.pkl, result.json (lines) and progress.csv."""

from __future__ import annotations

import csv
import json
import os
from typing import Any

import cloudpickle


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [_jsonable(v) for v in value]
        if hasattr(value, "item"):  # numpy scalars
            return value.item()
        return repr(value)
    return value


def write_params(trial_dir: str, config: dict[str, Any]) -> None:
    os.makedirs(trial_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(trial_dir, "params.json"), "w") as f:
        json.dump(_jsonable(config), f, indent=2, sort_keys=True)
    with open(os.path.join(trial_dir, "params.pkl"), "wb") as f:
        cloudpickle.dump(config, f)


def append_result(trial_dir: str, result: dict[str, Any]) -> None:
    """One line of result.json, one row of progress.csv (header from the first row)."""
    os.makedirs(trial_dir, mode=0o700, exist_ok=True)
    with open(os.path.join(trial_dir, "result.json"), "a") as f:
        f.write(json.dumps(_jsonable(result)) + "\n")
    row = {k: v for k, v in result.items() if k != "config"}
    path = os.path.join(trial_dir, "progress.csv")
    fresh = not os.path.exists(path) or os.path.getsize(path) == 0
    fields: list[str]
    if fresh:
        fields = list(row)
    else:
        with open(path, newline="") as f:
            fields = next(csv.reader(f))
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        if fresh:
            writer.writeheader()
        writer.writerow({k: _jsonable(v) for k, v in row.items()})


def read_results(trial_dir: str) -> list[dict[str, Any]]:
    path = os.path.join(trial_dir, "result.json")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]
