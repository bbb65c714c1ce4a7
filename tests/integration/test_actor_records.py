"""The control service's actor records keep the worker's pid and the death cause.

What callers see of an actor (``control.get_actor_info``,
``control.get_named_actor``, ``control.list_actors``, and the
``ActorDiedError`` of its calls) comes from one record, so the pid of the
process that hosted it and, once it is dead, why it died, reach all of them.
"""

from __future__ import annotations

import os

import pytest
from tests.conftest import wait_until

import ember
from ember.api.runtime_access import worker
from ember.protocol.messages import Empty, GetActorInfoRequest, GetNamedActorRequest

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=1)
    yield
    ember.shutdown()


@ember.remote(max_restarts=0)
class Victim:
    def pid(self):
        return os.getpid()

    def crash(self):
        os._exit(3)


def control_call(method, req):
    cw = worker()
    reply, _ = cw.run(cw.control.call(method, req))
    return reply


def actor_info(handle):
    req = GetActorInfoRequest(actor_id=handle._actor_id_bytes)
    return control_call("control.get_actor_info", req)


def listed(handle):
    (info,) = [
        i
        for i in control_call("control.list_actors", Empty()).actors
        if i.actor_id == handle._actor_id_bytes
    ]
    return info


def test_named_actor_lookup_carries_the_pid(cluster):
    a = Victim.options(name="victim-named").remote()
    pid = ember.get(a.pid.remote(), timeout=60)
    req = GetNamedActorRequest(name="victim-named", namespace=worker().namespace)
    info = control_call("control.get_named_actor", req)
    assert (info.state, info.pid) == ("ALIVE", pid)
    assert info.spec is not None  # what get_actor builds its handle from
    assert listed(a).pid == pid
    ember.kill(a)


def test_crashed_actor_reports_its_pid_and_death_cause(cluster):
    a = Victim.remote()
    pid = ember.get(a.pid.remote(), timeout=60)
    with pytest.raises(ember.exceptions.ActorDiedError):
        ember.get(a.crash.remote(), timeout=60)
    assert wait_until(lambda: actor_info(a).state == "DEAD", 30)
    for info in (actor_info(a), listed(a)):
        assert info.pid == pid
        assert f"pid={pid}" in info.death_cause
        assert "died unexpectedly" in info.death_cause
    # later calls fail with the death cause
    with pytest.raises(ember.exceptions.ActorDiedError, match=f"pid={pid}"):
        ember.get(a.pid.remote(), timeout=60)


def test_killed_actor_reports_its_pid_and_death_cause(cluster):
    a = Victim.remote()
    pid = ember.get(a.pid.remote(), timeout=60)
    ember.kill(a)
    assert wait_until(lambda: actor_info(a).state == "DEAD", 30)
    for info in (actor_info(a), listed(a)):
        assert info.pid == pid
        assert "killed by ember.kill()" in info.death_cause
    with pytest.raises(ember.exceptions.ActorDiedError):
        ember.get(a.pid.remote(), timeout=60)
