"""A get or wait with a timeout ends at its deadline (measured by the caller)."""

from __future__ import annotations

import asyncio
import time

import pytest

import ember
from ember.exceptions import GetTimeoutError

pytestmark = pytest.mark.multiprocess

T = 1.0
#: slack for process scheduling on a loaded machine; far below a second T
MARGIN = 0.6


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


@ember.remote
class Latch:
    def __init__(self):
        self._event = asyncio.Event()

    async def wait(self):
        await self._event.wait()
        return "released"

    async def release(self):
        self._event.set()


def test_get_of_a_pending_owned_ref_times_out_at_the_deadline(cluster):
    latch = Latch.remote()
    ref = latch.wait.remote()  # owned by this driver, pending until released
    start = time.monotonic()
    with pytest.raises(GetTimeoutError):
        ember.get(ref, timeout=T)
    elapsed = time.monotonic() - start
    assert T <= elapsed < T + MARGIN, f"get(timeout={T}) took {elapsed:.2f}s"
    start = time.monotonic()
    with pytest.raises(GetTimeoutError):
        ember.get([ember.put(1), ref], timeout=T)
    elapsed = time.monotonic() - start
    assert T <= elapsed < T + MARGIN, f"get([...], timeout={T}) took {elapsed:.2f}s"
    ember.get(latch.release.remote(), timeout=60)
    assert ember.get(ref, timeout=60) == "released"


def test_wait_with_a_timeout_returns_at_the_deadline(cluster):
    latch = Latch.remote()
    ref = latch.wait.remote()
    start = time.monotonic()
    ready, pending = ember.wait([ref], timeout=T)
    elapsed = time.monotonic() - start
    assert (ready, pending) == ([], [ref])
    assert T <= elapsed < T + MARGIN, f"wait(timeout={T}) took {elapsed:.2f}s"
    ember.get(latch.release.remote(), timeout=60)
    assert ember.wait([ref], timeout=60) == ([ref], [])


def test_get_timeout_zero_of_a_pending_ref(cluster):
    latch = Latch.remote()
    ref = latch.wait.remote()
    with pytest.raises(GetTimeoutError):
        ember.get(ref, timeout=0)
    ember.get(latch.release.remote(), timeout=60)
    assert ember.get(ref, timeout=60) == "released"


def test_get_of_a_pending_borrowed_ref_in_a_task_times_out_at_the_deadline(cluster):
    latch = Latch.remote()
    ref = latch.wait.remote()

    @ember.remote
    def borrow_and_get(refs):
        start = time.monotonic()
        try:
            ember.get(refs[0], timeout=T)
        except GetTimeoutError:
            return time.monotonic() - start
        return None

    elapsed = ember.get(borrow_and_get.remote([ref]), timeout=60)
    assert elapsed is not None, "the get inside the task did not time out"
    assert T <= elapsed < T + MARGIN, f"get(timeout={T}) in a task took {elapsed:.2f}s"
    ember.get(latch.release.remote(), timeout=60)
    assert ember.get(ref, timeout=60) == "released"
