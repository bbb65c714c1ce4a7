"""shutdown() leaves no process, socket or shared-memory file behind."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest
from tests.conftest import ember_shm_files, live_children, wait_until

import ember

pytestmark = pytest.mark.multiprocess


def test_shutdown_leaves_nothing_behind():
    before_shm = ember_shm_files()
    ember.init(num_cpus=2)
    session_dir = ember.api.init._context()["session_dir"]  # type: ignore[attr-defined]

    @ember.remote
    class A:
        def ping(self):
            return "pong"

    @ember.remote
    def f(x):
        return x.sum()

    a = A.remote()
    assert ember.get(a.ping.remote()) == "pong"
    assert ember.get(f.remote(np.ones(1_000_000))) == 1_000_000
    assert live_children(), "the local cluster runs in child processes"
    assert ember_shm_files() - before_shm, "the object store lives in /dev/shm"
    ember.shutdown()
    assert wait_until(lambda: not live_children(), 15), [
        p.cmdline() for p in live_children()
    ]
    assert ember_shm_files() == before_shm
    assert not glob.glob(os.path.join(session_dir, "sockets", "*"))
    assert not ember.is_initialized()


def test_put_and_drop_large_arrays_does_not_grow_store():
    ember.init(num_cpus=1, object_store_memory=1024 * 1024 * 1024)
    try:
        for i in range(50):
            ref = ember.put(np.full(100 * 1024 * 1024 // 8, i, dtype=np.float64))
            assert ember.get(ref)[0] == i
            del ref
    finally:
        ember.shutdown()
