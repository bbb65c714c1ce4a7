"""The caller's bookkeeping of streams: nothing stays behind a generator.

A dropped generator's stream is forgotten once its task ends (and its items are
freed); a wait on a generator whose next item never comes leaves no entry behind.
"""

from __future__ import annotations

import asyncio

import pytest
from tests.conftest import wait_until

import ember
from ember.runtime import current

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield current.worker_or_none()
    ember.shutdown()


@ember.remote(num_cpus=0)
class Gate:
    def __init__(self):
        self._event = asyncio.Event()

    async def wait(self):
        await self._event.wait()

    async def open(self):
        self._event.set()


@ember.remote
def gated(gate, n):
    yield 0
    ember.get(gate.wait.remote())
    for i in range(1, n):  # noqa: UP028
        yield i


def _idle(cw) -> bool:
    return not cw.generators.streams


def test_a_dropped_generator_is_forgotten_when_its_task_ends(cluster):
    cw = cluster
    entries_before = len(cw.store.entries)
    gate = Gate.remote()
    gen = gated.remote(gate, 4)
    assert ember.get(next(gen), timeout=60) == 0
    del gen  # dropped while its task still runs
    ember.get(gate.open.remote())
    assert wait_until(lambda: _idle(cw), timeout_s=60), cw.generators.streams
    # its items (and completed ref) were released: only the gate's calls remain
    assert wait_until(lambda: len(cw.store.entries) <= entries_before, 60), (
        len(cw.store.entries),
        entries_before,
    )


def test_a_wait_whose_item_never_comes_leaves_nothing_behind(cluster):
    cw = cluster
    gate = Gate.remote()
    gen = gated.remote(gate, 1)  # one item, then it waits, then ends
    assert ember.get(next(gen), timeout=60) == 0
    entries_before = len(cw.store.entries)
    assert ember.wait([gen], timeout=0.1) == ([], [gen])  # a probe was made
    ember.get(gate.open.remote())
    assert ember.wait([gen], timeout=60) == ([gen], [])  # ended: ready
    with pytest.raises(StopIteration):
        next(gen)
    del gen
    assert wait_until(lambda: _idle(cw), timeout_s=60)
    assert wait_until(lambda: len(cw.store.entries) < entries_before, 60)
