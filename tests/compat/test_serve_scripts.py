"""Serve scripts written as Ray's documentation writes them run unchanged on ember.

Each script in ``serve_scripts/`` starts its own cluster and Serve on a port of
18660-18669, checks its answers with asserts, shuts everything down and prints OK.
The scripts import ``ember``; under the Ray shim the same files run on Ray 2.60.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("starlette")

HERE = os.path.join(os.path.dirname(__file__), "serve_scripts")
SCRIPTS = sorted(f for f in os.listdir(HERE) if f.endswith(".py"))


@pytest.mark.slow
@pytest.mark.parametrize("script", SCRIPTS)
def test_serve_doc_script_runs(script):
    if script == "fastapi_app.py":
        pytest.importorskip("fastapi")
    out = subprocess.run(
        [sys.executable, os.path.join(HERE, script)],
        capture_output=True,
        text=True,
        timeout=300,
        env=dict(os.environ),
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().endswith("OK"), out.stdout
