"""What a worker's tasks spawned dies with the worker, however the worker ends.

Each test starts a real ``sleep`` from a task or actor, ends its worker one of
the ways Ray users do (``kill``, ``cancel(force=True)``, ``max_calls``, a
crash, ``shutdown``) and waits, with a deadline, until the sleep is gone.
"""

from __future__ import annotations

import os
import subprocess

import psutil
import pytest
from tests.conftest import wait_until

import ember

pytestmark = pytest.mark.multiprocess


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def _spawn_sleep(own_group: bool = False) -> int:
    kw = {"process_group": 0} if own_group else {}
    return subprocess.Popen(["sleep", "1000"], **kw).pid


@pytest.fixture
def cluster():
    if ember.is_initialized():
        ember.shutdown()
    ember.init(num_cpus=2)
    yield
    ember.shutdown()


def test_killing_an_actor_ends_what_it_spawned(cluster):
    @ember.remote
    class Spawner:
        def spawn(self, own_group):
            return _spawn_sleep(own_group)

    a = Spawner.remote()
    pids = [ember.get(a.spawn.remote(False)), ember.get(a.spawn.remote(True))]
    assert not any(_gone(p) for p in pids)
    ember.kill(a)
    assert wait_until(lambda: all(_gone(p) for p in pids), 20), pids


def test_force_cancel_ends_what_the_task_spawned(cluster, tmp_path):
    marker = tmp_path / "pid"

    @ember.remote(max_retries=0)
    def spawn_and_wait(path):
        import time

        with open(path, "w") as f:
            f.write(str(_spawn_sleep()))
        time.sleep(1000)

    ref = spawn_and_wait.remote(str(marker))
    assert wait_until(lambda: marker.exists() and marker.read_text(), 30)
    pid = int(marker.read_text())
    assert not _gone(pid)
    ember.cancel(ref, force=True)
    assert wait_until(lambda: _gone(pid), 20)
    with pytest.raises(ember.exceptions.EmberError):
        ember.get(ref, timeout=30)


def test_a_crashed_worker_leaves_nothing_running(cluster, tmp_path):
    marker = tmp_path / "pid"

    @ember.remote(max_retries=0)
    def spawn_and_crash(path):
        with open(path, "w") as f:
            f.write(str(_spawn_sleep()))
        os._exit(3)

    ref = spawn_and_crash.remote(str(marker))
    with pytest.raises(ember.exceptions.WorkerCrashedError):
        ember.get(ref, timeout=60)
    pid = int(marker.read_text())
    assert wait_until(lambda: _gone(pid), 20)


def test_max_calls_replacement_ends_what_the_task_spawned(cluster):
    @ember.remote(max_calls=1)
    def spawn():
        return _spawn_sleep()

    pid = ember.get(spawn.remote())
    assert wait_until(lambda: _gone(pid), 20)


def test_shutdown_ends_what_tasks_and_actors_spawned():
    ember.init(num_cpus=2)

    @ember.remote
    def spawn():
        return _spawn_sleep()

    @ember.remote
    class Spawner:
        def spawn(self):
            return _spawn_sleep()

    a = Spawner.remote()
    pids = [ember.get(spawn.remote()), ember.get(a.spawn.remote())]
    assert not any(_gone(p) for p in pids)
    ember.shutdown()
    assert wait_until(lambda: all(_gone(p) for p in pids), 20), pids


def test_a_launch_cancelled_at_stop_does_not_stop_exit_reports(tmp_path):
    """The node daemon cancels launches in flight when it stops; exits must still come.

    (A cancelled launch's pid reply used to end the fork server's reader with
    InvalidStateError; then no exit was reported and the daemon's stop waited 5 s
    and was SIGKILLed.)
    """
    import asyncio

    from ember.node.launcher import ForkServerLauncher

    env = dict(os.environ)
    log = str(tmp_path / "fs.log")

    async def scenario() -> int:
        fs = ForkServerLauncher()
        await fs.start(env, log)
        try:
            first = asyncio.ensure_future(fs.launch(["--no-such-flag"], env, log))
            await asyncio.sleep(0)  # let it send its request and wait for the pid
            first.cancel()
            _, exited = await fs.launch(["--no-such-flag"], env, log)
            return await asyncio.wait_for(exited, 60)
        finally:
            await fs.close()

    assert asyncio.run(scenario()) == 2  # argparse's exit code: the exit was reported
