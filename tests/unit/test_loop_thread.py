"""LoopThread batches: a failing callback does not stop the rest of its batch."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from ember.runtime.loop_thread import LoopThread


@pytest.fixture
def lt() -> Iterator[LoopThread]:
    t = LoopThread(name="test-loop")
    yield t
    t.stop()


def _boom() -> None:
    raise ValueError("boom")


@pytest.mark.parametrize("mode", ["call_batched", "call_lazy"])
def test_failing_callback_does_not_stop_its_batch(
    lt: LoopThread, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    ran = threading.Event()
    lt.call(gate.wait, 10)  # hold the loop so both calls join one batch
    enqueue = getattr(lt, mode)
    enqueue(_boom)
    enqueue(ran.set)
    with caplog.at_level(logging.ERROR, logger="ember.runtime.loop_thread"):
        gate.set()
        assert ran.wait(10), "the callback after the failing one never ran"
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert len(failures) == 1
    assert failures[0].exc_info is not None
    assert "boom" in str(failures[0].exc_info[1])
