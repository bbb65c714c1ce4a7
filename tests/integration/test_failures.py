"""Worker and actor process deaths, with real processes and real kills."""

from __future__ import annotations

import os

import pytest
from tests.conftest import wait_until

import ember
from ember.exceptions import ActorDiedError, RayActorError, WorkerCrashedError

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


@ember.remote
class Attempts:
    def __init__(self):
        self.n = 0

    def bump(self):
        self.n += 1
        return self.n

    def count(self):
        return self.n


def test_task_whose_worker_dies_is_retried_then_succeeds(cluster):
    attempts = Attempts.remote()

    @ember.remote(max_retries=2)
    def flaky(counter):
        if ember.get(counter.bump.remote()) < 3:
            os._exit(1)
        return "ok"

    assert ember.get(flaky.remote(attempts), timeout=60) == "ok"
    assert ember.get(attempts.count.remote()) == 3


def test_task_whose_worker_always_dies_raises_worker_crashed(cluster):
    attempts = Attempts.remote()

    @ember.remote(max_retries=1)
    def doomed(counter):
        ember.get(counter.bump.remote())
        os._exit(1)

    with pytest.raises(WorkerCrashedError):
        ember.get(doomed.remote(attempts), timeout=60)
    assert ember.get(attempts.count.remote()) == 2  # first run + one retry


def test_max_retries_zero_fails_at_once(cluster):
    @ember.remote(max_retries=0)
    def die():
        os._exit(1)

    with pytest.raises(WorkerCrashedError):
        ember.get(die.remote(), timeout=60)


@ember.remote
class Victim:
    def __init__(self):
        self.calls = 0

    def pid(self):
        return os.getpid()

    def call(self):
        self.calls += 1
        return self.calls

    def die(self):
        os._exit(1)


def test_actor_killed_is_restarted_with_fresh_state(cluster):
    a = Victim.options(max_restarts=1).remote()
    assert ember.get(a.call.remote()) == 1
    assert ember.get(a.call.remote()) == 2
    pid = ember.get(a.pid.remote())
    with pytest.raises(RayActorError):
        ember.get(a.die.remote(), timeout=60)
    # The restarted actor runs in a new process with its constructor's state.
    assert ember.get(a.call.remote(), timeout=60) == 1
    assert ember.get(a.pid.remote()) != pid
    # No restarts left: the next death is final.
    with pytest.raises(RayActorError):
        ember.get(a.die.remote(), timeout=60)
    with pytest.raises(ActorDiedError):
        ember.get(a.call.remote(), timeout=60)


def test_actor_without_restarts_dies(cluster):
    a = Victim.remote()
    assert ember.get(a.call.remote()) == 1
    with pytest.raises(ActorDiedError):
        ember.get(a.die.remote(), timeout=60)
    with pytest.raises(ActorDiedError):
        ember.get(a.call.remote(), timeout=60)


def test_actor_process_killed_from_outside(cluster):
    import signal

    a = Victim.options(max_restarts=1).remote()
    pid = ember.get(a.pid.remote())
    os.kill(pid, signal.SIGKILL)

    # A call racing with the kill may fail; once the restart is seen, calls reach the
    # new process, whose state is fresh.
    def restarted():
        try:
            return ember.get(a.pid.remote(), timeout=60) != pid
        except RayActorError:
            return False

    assert wait_until(restarted, 60)
    assert ember.get(a.call.remote(), timeout=60) == 1


def test_max_task_retries_replays_call_on_restarted_actor(cluster):
    attempts = Attempts.remote()

    @ember.remote(max_restarts=1, max_task_retries=1)
    class Fragile:
        def work(self, counter):
            if ember.get(counter.bump.remote()) == 1:
                os._exit(1)
            return "done"

    f = Fragile.remote()
    assert ember.get(f.work.remote(attempts), timeout=60) == "done"
