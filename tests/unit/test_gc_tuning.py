"""ember's daemons and workers tune their garbage collector (``common/gc_tuning.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

PROBE = """
import gc, json
from ember.common import gc_tuning
changed = gc_tuning.tune()
again = gc_tuning.tune()
print(json.dumps([changed, again, gc.get_threshold()[0], gc.get_freeze_count()]))
"""


def probe(env_value: str | None) -> list:
    env = dict(os.environ)
    env.pop("EMBER_GC_THRESHOLD", None)
    if env_value is not None:
        env["EMBER_GC_THRESHOLD"] = env_value
    out = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(out.stdout)


def test_a_daemon_collects_young_objects_less_often_and_freezes_its_imports():
    changed, again, threshold, frozen = probe(None)
    assert changed
    assert not again  # a worker forked from a tuned server leaves it as it is
    assert threshold == 50_000
    assert frozen > 1000  # the imported modules' objects


def test_the_threshold_is_a_knob_and_zero_leaves_the_collector_alone():
    assert probe("20000")[2] == 20_000
    changed, _, threshold, frozen = probe("0")
    assert not changed
    assert threshold == 700
    assert frozen == 0
