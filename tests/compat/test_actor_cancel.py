"""ray.cancel of actor calls (as Ray 2.60 does it): a queued call is cancelled, a
running async call's coroutine gets CancelledError, a running sync or threaded call
is not interrupted but sees ``is_canceled()``; whatever a call a cancel reached does,
``get`` raises TaskCancelledError. ``force=True`` is refused for actor calls."""

from __future__ import annotations

import asyncio

import pytest

import ember as ray
from ember import exceptions

NOTHING_TO_CANCEL = (
    "in local mode a call has finished when .remote() returns: nothing to cancel"
)


@ray.remote(num_cpus=0)
class Sleeper:
    """An async actor whose ``sleep`` waits on a latch until it is cancelled."""

    def __init__(self):
        self.cancelled = 0
        self.finished = 0

    async def sleep(self, started, latch):
        try:  # a cancel may land at either await
            await started.send.remote()
            await latch.wait.remote()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        self.finished += 1
        return "finished"

    async def swallow(self, started, latch):
        try:  # a cancel may land at either await
            await started.send.remote()
            await latch.wait.remote()
        except asyncio.CancelledError:
            self.cancelled += 1
        return "swallowed"

    async def counts(self):
        return self.cancelled, self.finished

    async def look(self):
        return ray.get_runtime_context().is_canceled()


@ray.remote(num_cpus=0)
class Worker:
    """A sync actor: ``block`` holds the actor until its latch is sent."""

    def __init__(self):
        self.ran = []

    def block(self, started, latch):
        ray.get(started.send.remote())
        ray.get(latch.wait.remote())
        self.ran.append("block")
        return "blocked"

    def record(self, name):
        self.ran.append(name)
        return name

    def ignore_cancel(self, started, path, deadline_s=60):
        import os
        import time

        ray.get(started.send.remote())
        # waits without ray.get (Ray ends a blocking ray.get in a cancelled call)
        end = time.monotonic() + deadline_s
        while not os.path.exists(path) and time.monotonic() < end:
            time.sleep(0.01)
        self.ran.append("ran to the end")
        return "ignored"

    def poll_until_canceled(self, started, deadline_s=60):
        import time

        ray.get(started.send.remote())
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            if ray.get_runtime_context().is_canceled():
                self.ran.append("saw cancel")
                return "saw cancel"
            time.sleep(0.01)
        return "never canceled"

    def history(self):
        return self.ran


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_cancel_running_async_call_cancels_its_coroutine(ray_module, signal_cls):
    started, latch = signal_cls.remote(), signal_cls.remote()
    actor = Sleeper.remote()
    ref = actor.sleep.remote(started, latch)
    ray.get(started.wait.remote(), timeout=60)
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    # the coroutine saw CancelledError; the actor keeps serving calls
    assert ray.get(actor.counts.remote(), timeout=60) == (1, 0)


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_cancel_async_call_waiting_for_a_slot_never_runs(ray_module, signal_cls):
    first_started, latch = signal_cls.remote(), signal_cls.remote()
    second_started = signal_cls.remote()
    actor = Sleeper.options(max_concurrency=1).remote()
    first = actor.sleep.remote(first_started, latch)
    ray.get(first_started.wait.remote(), timeout=60)
    second = actor.sleep.remote(second_started, latch)
    ray.cancel(second)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(second, timeout=60)
    ray.get(latch.send.remote())
    assert ray.get(first, timeout=60) == "finished"
    assert ray.get(actor.counts.remote(), timeout=60) == (0, 1)


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_cancel_queued_call_of_sync_actor(ray_module, signal_cls):
    started, latch = signal_cls.remote(), signal_cls.remote()
    actor = Worker.remote()
    blocker = actor.block.remote(started, latch)
    ray.get(started.wait.remote(), timeout=60)
    queued = actor.record.remote("queued")
    ray.cancel(queued)
    ray.get(latch.send.remote())
    assert ray.get(blocker, timeout=60) == "blocked"
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(queued, timeout=60)


@pytest.mark.ember_only  # Ray 2.60 may still run the cancelled call, or (a race
# in its ordered queue) fail the calls behind it with ActorUnavailableError
@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_cancelled_queued_call_never_runs_and_later_calls_do(ray_module, signal_cls):
    started, latch = signal_cls.remote(), signal_cls.remote()
    actor = Worker.remote()
    blocker = actor.block.remote(started, latch)
    ray.get(started.wait.remote(), timeout=60)
    queued = actor.record.remote("queued")
    after = actor.record.remote("after")
    ray.cancel(queued)
    ray.get(latch.send.remote())
    assert ray.get(blocker, timeout=60) == "blocked"
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(queued, timeout=60)
    assert ray.get(after, timeout=60) == "after"
    assert ray.get(actor.history.remote(), timeout=60) == ["block", "after"]


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_running_sync_call_is_not_interrupted_but_cancelled(
    ray_module, signal_cls, tmp_path
):
    started = signal_cls.remote()
    go_on = tmp_path / "go-on"
    actor = Worker.remote()
    ref = actor.ignore_cancel.remote(started, str(go_on))
    ray.get(started.wait.remote(), timeout=60)
    ray.cancel(ref)
    ready, _ = ray.wait([ref], timeout=0.5)
    assert ready == []  # still running: a cancel does not interrupt it
    go_on.write_text("")
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(actor.history.remote(), timeout=60) == ["ran to the end"]


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_async_call_that_swallows_the_cancel_is_still_cancelled(ray_module, signal_cls):
    started, latch = signal_cls.remote(), signal_cls.remote()
    actor = Sleeper.remote()
    ref = actor.swallow.remote(started, latch)
    ray.get(started.wait.remote(), timeout=60)
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(actor.counts.remote(), timeout=60) == (1, 0)


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_running_sync_call_sees_is_canceled(ray_module, signal_cls):
    started = signal_cls.remote()
    actor = Worker.remote()
    ref = actor.poll_until_canceled.remote(started)
    ray.get(started.wait.remote(), timeout=60)
    ray.cancel(ref)
    # not interrupted: the call saw the flag and returned
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(actor.history.remote(), timeout=60) == ["saw cancel"]


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_threaded_actor_call_sees_is_canceled(ray_module, signal_cls):
    started = signal_cls.remote()
    actor = Worker.options(max_concurrency=3).remote()
    ref = actor.poll_until_canceled.remote(started)
    ray.get(started.wait.remote(), timeout=60)
    assert ray.get(actor.record.remote("meanwhile"), timeout=60) == "meanwhile"
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert "saw cancel" in ray.get(actor.history.remote(), timeout=60)


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_force_cancel_of_actor_call_raises_value_error(ray_module, signal_cls):
    started, latch = signal_cls.remote(), signal_cls.remote()
    actor = Worker.remote()
    ref = actor.block.remote(started, latch)
    ray.get(started.wait.remote(), timeout=60)
    with pytest.raises(ValueError, match="force=True is not supported for actor tasks"):
        ray.cancel(ref, force=True)
    ray.get(latch.send.remote())
    assert ray.get(ref, timeout=60) == "blocked"  # not cancelled


def test_cancel_of_finished_actor_call_does_nothing(ray_module):
    actor = Worker.remote()
    ref = actor.record.remote("done")
    assert ray.get(ref, timeout=60) == "done"
    ray.cancel(ref)
    ray.cancel(ref, force=True)  # no error once the call is over
    assert ray.get(ref, timeout=60) == "done"


@pytest.mark.cluster_only("local mode runs no async actor on a worker")
def test_is_canceled_is_refused_in_async_actor(ray_module):
    actor = Sleeper.remote()
    with pytest.raises(RuntimeError, match="async actor"):
        ray.get(actor.look.remote(), timeout=60)


@pytest.mark.cluster_only(NOTHING_TO_CANCEL)
def test_cancel_call_of_actor_still_being_created(ray_module, signal_cls):
    latch = signal_cls.remote()

    @ray.remote(num_cpus=0)
    class SlowStart:
        def __init__(self, latch):
            ray.get(latch.wait.remote())

        def ping(self):
            return "pong"

    actor = SlowStart.remote(latch)
    ref = actor.ping.remote()
    ray.cancel(ref)
    ray.get(latch.send.remote())
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    assert ray.get(actor.ping.remote(), timeout=60) == "pong"
