"""CallCancels: what a cancel does to an actor call queued, running sync, or async."""

from __future__ import annotations

import asyncio

import pytest

from ember.runtime import task_context
from ember.worker.call_cancels import CallCancels


@pytest.fixture
def cancels():
    yield CallCancels()
    task_context.cancel_requested.clear()


def test_a_call_cancelled_while_queued_never_begins(cancels):
    cancels.queued(b"a")
    assert cancels.cancel(b"a")
    assert not cancels.begin(b"a")
    cancels.end(b"a")
    assert cancels.statistics() == {
        "queued": 0,
        "running": 0,
        "cancelled": 0,
        "requested": 0,
    }


def test_a_running_sync_call_only_gets_the_flag(cancels):
    cancels.queued(b"a")
    assert cancels.begin(b"a")
    assert b"a" not in task_context.cancel_requested
    assert not cancels.requested(b"a")
    assert cancels.cancel(b"a")
    assert b"a" in task_context.cancel_requested  # is_canceled() is True
    assert cancels.requested(b"a")  # its outcome becomes TaskCancelledError
    cancels.end(b"a")
    assert b"a" not in task_context.cancel_requested
    assert not cancels.requested(b"a")


def test_a_cancel_for_an_unknown_or_finished_call_does_nothing(cancels):
    assert not cancels.cancel(b"nobody")
    cancels.queued(b"a")
    cancels.begin(b"a")
    cancels.end(b"a")
    assert not cancels.cancel(b"a")
    assert cancels.begin(b"a")  # a finished call's id is forgotten, not marked
    assert b"a" not in task_context.cancel_requested


def test_a_second_begin_of_a_running_call_is_free(cancels):
    cancels.queued(b"a")
    assert cancels.begin(b"a")
    assert cancels.begin(b"a")
    assert cancels.statistics()["running"] == 1


def test_a_running_async_call_is_cancelled_on_its_loop(cancels):
    seen: list[str] = []
    at_await = asyncio.Event()

    async def call() -> None:
        at_await.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    async def main() -> None:
        loop = asyncio.get_running_loop()
        cancels.queued(b"a")
        task = loop.create_task(call())
        assert cancels.begin(b"a", task, loop)
        await at_await.wait()
        assert cancels.cancel(b"a")
        with pytest.raises(asyncio.CancelledError):
            await task
        assert cancels.requested(b"a")
        cancels.end(b"a")

    asyncio.run(main())
    assert seen == ["cancelled"]
    assert b"a" not in task_context.cancel_requested  # async calls get no flag
