"""Tune scripts written as Ray's documentation writes them give the same results.

Each script in tune_scripts/ prints one ``RESULT <json>`` line; the expected values
below hold on ember and on Ray 2.60 alike (the suite runs unchanged on Ray).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each script starts a cluster and runs 3-12 trials

SCRIPTS = Path(__file__).parent / "tune_scripts"

EXPECTED = {
    "quickstart.py": {"config": {"a": 0.001, "b": 1}, "trials": 12},
    "asha_checkpoints.py": {
        "config": {"lr": 0.5, "momentum": 0.1},
        "epoch": 7,
        "errors": 0,
    },
    "class_trainable.py": {
        "config": {"rate": 0.5},
        "iterations": [4, 4, 4],
        "checkpointed": True,
    },
}


@pytest.mark.timeout(600)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_script_gives_the_documented_result(script, tmp_path):
    env = dict(os.environ)
    env.setdefault("PYTHONPATH", "")
    env["EMBER_STORAGE_PATH"] = str(tmp_path)
    env["HOME"] = str(tmp_path)  # Ray's runs go to ~/ray_results
    proc = subprocess.run(
        [sys.executable, str(SCRIPTS / script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout[-2000:]
    assert json.loads(lines[-1][len("RESULT ") :]) == EXPECTED[script]
