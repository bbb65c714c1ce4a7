"""An actor dies with its creator's last handle (unless detached or its handle escaped)."""

from __future__ import annotations

import gc
import os

import psutil
import pytest
from tests.conftest import wait_until

import ember

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


@ember.remote
class Holder:
    def pid(self):
        return os.getpid()


def _gone(pid):
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_actor_dies_when_its_last_handle_goes(cluster):
    a = Holder.remote()
    pid = ember.get(a.pid.remote())
    ref = a.pid.remote()  # a call still pending when the handle goes still runs
    del a
    gc.collect()
    assert ember.get(ref, timeout=60) == pid
    assert wait_until(lambda: _gone(pid), 30)


def test_detached_actors_outlive_their_handle(cluster):
    a = Holder.options(name="keeper", lifetime="detached").remote()
    pid = ember.get(a.pid.remote())
    del a
    gc.collect()
    assert ember.get(ember.get_actor("keeper").pid.remote()) == pid
    ember.kill(ember.get_actor("keeper"))


def test_named_actor_dies_with_its_creators_handle(cluster):
    """As in Ray 2.60: a get_actor handle does not keep it alive."""
    a = Holder.options(name="dropped").remote()
    pid = ember.get(a.pid.remote())
    other = ember.get_actor("dropped")
    del a
    gc.collect()
    assert wait_until(lambda: _gone(pid), 30)
    with pytest.raises(ember.exceptions.RayActorError):
        ember.get(other.pid.remote(), timeout=60)


def test_actor_whose_handle_escaped_stays_alive(cluster):
    a = Holder.remote()
    pid = ember.get(a.pid.remote())

    @ember.remote
    def use(h):
        return ember.get(h.pid.remote())

    assert ember.get(use.remote(a)) == pid
    del a
    gc.collect()
    assert not _gone(pid)


@pytest.mark.parametrize("options", [{}, {"max_concurrency": 2}])
def test_exit_actor_ends_its_process(cluster, options):
    """exit_actor() ends the worker, also in a threaded actor (calls on a pool)."""

    @ember.remote
    class Quitter:
        def pid(self):
            return os.getpid()

        def quit(self):
            ember.actor.exit_actor()

    a = Quitter.options(**options).remote()
    pid = ember.get(a.pid.remote())
    with pytest.raises(ember.exceptions.ActorDiedError):
        ember.get(a.quit.remote(), timeout=60)
    assert wait_until(lambda: _gone(pid), 30)
