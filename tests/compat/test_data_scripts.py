"""Ray-docs-style Data scripts (tests/compat/data_scripts/) print the same RESULT on ember and Ray.

Each script runs in its own interpreter (as a user would run it), starting its own
cluster; the expected line is the one Ray 2.60 prints.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HERE = os.path.join(os.path.dirname(__file__), "data_scripts")

EXPECTED = {
    "quickstart.py": "RESULT 33 ['petal.area', 'petal.length', 'sepal.length'] 532.0",
    "batch_inference.py": "RESULT 1000 249750.0 [0, 1, 2]",
    "parquet_etl.py": "RESULT 50 ['group', 'value'] 742.5",
}


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_script_gives_rays_result(script):
    proc = subprocess.run(
        [sys.executable, os.path.join(HERE, script)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT")]
    assert lines == [EXPECTED[script]], proc.stdout[-2000:]
