"""How workers look from outside: process titles in ``ps`` and log file names."""

from __future__ import annotations

import glob
import os
import time

import psutil
import pytest
from tests.conftest import wait_until

import ember
from ember.api import runtime_access

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=1)
    yield
    ember.shutdown()


def _title(pid: int) -> str:
    """What ``ps`` shows as the process's command line."""
    with open(f"/proc/{pid}/cmdline", "rb") as f:
        return f.read().replace(b"\0", b" ").decode().strip()


def _title_or_none(pid: int) -> str | None:
    try:
        return _title(pid)
    except OSError:
        return None


@ember.remote
class Gate:
    """Holds a task inside its body until released."""

    def __init__(self):
        self.open = False

    def release(self):
        self.open = True

    def is_open(self):
        return self.open


@ember.remote
def held_task(gate):
    while not ember.get(gate.is_open.remote()):
        time.sleep(0.01)
    return os.getpid()


@ember.remote
class Titled:
    def pid(self):
        return os.getpid()

    def hold(self, gate):
        while not ember.get(gate.is_open.remote()):
            time.sleep(0.01)


def test_task_worker_is_named_by_its_task_then_idle(cluster):
    gate = Gate.remote()
    ref = held_task.remote(gate)
    assert wait_until(
        lambda: any(
            _title_or_none(p.pid) == "ember::held_task" for p in psutil.process_iter()
        )
    )
    gate.release.remote()
    pid = ember.get(ref)
    assert wait_until(lambda: _title(pid) == "ember::IDLE")


def test_actor_process_is_named_by_class_and_method(cluster):
    gate = Gate.remote()
    actor = Titled.remote()
    pid = ember.get(actor.pid.remote())
    assert wait_until(lambda: _title(pid) == "ember::Titled")
    ref = actor.hold.remote(gate)
    assert wait_until(lambda: _title(pid) == "ember::Titled.hold")
    gate.release.remote()
    ember.get(ref)
    assert wait_until(lambda: _title(pid) == "ember::Titled")


def test_worker_log_files_are_named_by_worker_id_and_pid(cluster):
    pid = ember.get(held_task.remote(_open_gate()))
    logs = os.path.join(runtime_access.worker().session_dir, "logs")
    names = [os.path.basename(p) for p in glob.glob(os.path.join(logs, "worker-*"))]
    # Ray's worker-<worker id>-<job id>-<pid>.out/.err (ember's workers serve any job)
    for suffix in ("out", "err"):
        assert any(
            n.endswith(f"-ffffffff-{pid}.{suffix}") and len(n.split("-")[1]) == 32
            for n in names
        ), names


def _open_gate():
    gate = Gate.remote()
    ember.get(gate.release.remote())
    return gate


@ember.remote
class Doomed:
    def pid(self):
        return os.getpid()

    def die(self):
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


def test_actor_killed_by_a_signal_names_the_signal(cluster):
    from ember.exceptions import ActorDiedError

    actor = Doomed.remote()
    pid = ember.get(actor.pid.remote())
    with pytest.raises(ActorDiedError):
        ember.get(actor.die.remote())
    assert wait_until(lambda: not psutil.pid_exists(pid))

    def says_sigkill() -> bool:
        try:
            ember.get(actor.pid.remote())
        except ActorDiedError as exc:
            return "killed by signal SIGKILL" in str(exc)
        return False

    assert wait_until(says_sigkill)
