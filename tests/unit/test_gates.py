"""The static gates CI runs before the tests: lint, format, types, layering.

They run here too, so that the README's test command passes them all.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GATES = {
    "ruff check": [sys.executable, "-m", "ruff", "check", "src", "tests", "bench"],
    "ruff format": [
        sys.executable,
        "-m",
        "ruff",
        "format",
        "--check",
        "src",
        "tests",
        "bench",
    ],
    "mypy": [sys.executable, "-m", "mypy"],
    "lint-imports": ["lint-imports"],
}


@pytest.mark.parametrize("gate", list(GATES))
def test_gate_passes(gate: str) -> None:
    cmd = GATES[gate]
    if cmd[0] == "lint-imports":
        exe = shutil.which("lint-imports") or str(
            Path(sys.executable).parent / "lint-imports"
        )
        cmd = [exe, *cmd[1:]]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"{gate} failed:\n{proc.stdout}\n{proc.stderr}"
