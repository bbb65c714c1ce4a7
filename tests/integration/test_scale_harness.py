"""The scale harness (bench/scale.py) runs end to end at small N, with sane figures.

20 simulated nodes (two simulator processes) beside a real head: every node
registers, killed nodes are noticed, tasks and actors placed on simulated
nodes complete, placement groups are created and removed; and nothing the
harness started outlives it.  The slope check is tested on made-up figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.integration.cli_cluster import clean_up, env_for, make_root

REPO = Path(__file__).resolve().parents[2]
# appended, not prepended: bench/profile.py must not shadow the standard library's
sys.path.append(str(REPO / "bench"))

import scale  # noqa: E402

N = 20


def test_the_harness_runs_end_to_end_at_small_n():
    root = make_root("emscale")
    out = os.path.join(root, "scale.json")
    pythonpath = os.pathsep.join(
        [str(REPO / "src"), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    try:
        p = subprocess.run(
            [
                sys.executable,
                str(REPO / "bench" / "scale.py"),
                *("--sizes", str(N), "--per-process", "10"),
                *("--window-s", "1", "--settle-s", "0.5", "--stall-s", "20"),
                *("--actors", "20", "--running", "40", "--pgs", "10"),
                *("--no-fixed", "--json", out),
            ],
            env=env_for(root, PYTHONPATH=pythonpath),
            cwd=str(REPO),
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert p.returncode == 0, p.stderr[-3000:]
        got = json.loads(Path(out).read_text())
    finally:
        leftovers = clean_up(root)
    assert leftovers == [], f"left behind: {leftovers}"
    (row,) = got["rows"]
    assert row["nodes"] == N
    assert row["registered"] == N  # the control service holds every one alive
    assert row["alive_after_kills"] == N - 3  # the three killed nodes were noticed
    assert 0 < row["death_notice_ms"] < 10_000  # told at once, not at the timeout
    assert row["remote_schedule_ms"] > 0  # tasks spilled to simulated nodes finished
    assert row["actors"] == N
    assert row["running_tasks"] == 40  # all held at once on simulated nodes
    assert row["placement_groups"] == 10
    assert row["control_rss_kib_per_node"] < 1024
    assert "| nodes in one cluster |" in p.stdout


def test_the_slope_check_flags_what_grows_faster_than_it_should():
    rows = [
        {"n": 300, "propagation_ms": 10.0, "status_s": 1.0, "death_notice_ms": 5.0},
        {"n": 3000, "propagation_ms": 1000.0, "status_s": 10.0, "death_notice_ms": 6.0},
    ]
    exps = scale.slopes(rows)
    assert round(exps["propagation_ms"][0], 2) == 2.0  # 100x for 10x the nodes
    assert round(exps["status_s"][0], 2) == 1.0
    # status is expected to grow linearly (it prints every node); propagation is not
    assert scale.flagged(rows) == ["propagation_ms"]
    assert "SUPER-LINEAR" in scale.table(rows, {})
