"""An idle worker that owns objects still in use is not stopped (Ray keeps owners).

A worker owns what it puts; when a task returns such a ref inside its value,
the caller can read it only while that worker lives.  Idle workers beyond the
node's CPU count are stopped after ``idle_worker_timeout_s``, except those.
"""

from __future__ import annotations

import os

import psutil
import pytest
from tests.conftest import wait_until

import ember

pytestmark = pytest.mark.multiprocess


@ember.remote(num_cpus=0)
class Meeting:
    """Holds tasks until all have arrived, so each runs on its own worker."""

    def __init__(self, n):
        self.n, self.arrived = n, 0

    def arrive(self):
        self.arrived += 1

    def all_here(self):
        return self.arrived >= self.n


@ember.remote(num_cpus=0)
def work(meeting, own):
    import time

    ember.get(meeting.arrive.remote())
    deadline = time.monotonic() + 60
    while not ember.get(meeting.all_here.remote()) and time.monotonic() < deadline:
        time.sleep(0.01)
    inner = [ember.put(f"kept by {os.getpid()}")] if own else []
    return os.getpid(), inner


def test_idle_workers_that_own_objects_in_use_stay(monkeypatch):
    monkeypatch.setenv("EMBER_IDLE_WORKER_TIMEOUT_S", "0.2")
    ember.init(num_cpus=1)
    try:
        meeting = Meeting.remote(3)
        out = ember.get([work.remote(meeting, own) for own in (True, True, False)])
        (owner1, inner1), (owner2, inner2), (plain, _) = out
        assert len({owner1, owner2, plain}) == 3
        # the worker that owns nothing is stopped for idleness...
        assert wait_until(lambda: not psutil.pid_exists(plain), timeout_s=60)
        # ...while the two owners stay, and what they own is still readable
        assert psutil.pid_exists(owner1)
        assert psutil.pid_exists(owner2)
        assert ember.get(inner1[0]) == f"kept by {owner1}"
        assert ember.get(inner2[0]) == f"kept by {owner2}"
    finally:
        ember.shutdown()
