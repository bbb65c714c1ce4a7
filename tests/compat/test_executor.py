"""ember.util.executor.RayExecutor: concurrent.futures over tasks and over an actor pool.

Ray 2.60 ships no such executor (the proposals were not merged), so this
module is ember_only.
"""

from __future__ import annotations

import concurrent.futures
import os

import pytest

import ember as ray

pytestmark = pytest.mark.ember_only

if ray.__name__ == "ember":
    from ember.util.executor import RayExecutor


def _square(x):
    return x * x


def _fail(msg):
    raise KeyError(msg)


_INIT_MARK = "EMBER_TEST_EXECUTOR_INIT"


def _set_mark(value):
    os.environ[_INIT_MARK] = value


def _read_mark(_):
    return os.environ.get(_INIT_MARK)


def test_tasks_submit_and_map(ray_module):
    with RayExecutor() as ex:
        fut = ex.submit(_square, 7)
        assert fut.result(timeout=60) == 49
        assert list(ex.map(_square, range(10))) == [i * i for i in range(10)]


def test_an_error_is_raised_from_result(ray_module):
    with RayExecutor() as ex:
        fut = ex.submit(_fail, "missing")
        with pytest.raises(KeyError, match="missing"):
            fut.result(timeout=60)
        assert isinstance(fut.exception(), KeyError)


def test_max_workers_caps_the_calls_in_flight_but_all_finish(ray_module):
    with RayExecutor(max_workers=1) as ex:
        futures = [ex.submit(_square, i) for i in range(8)]
        done, _ = concurrent.futures.wait(futures, timeout=120)
    assert len(done) == 8
    assert sorted(f.result() for f in futures) == [i * i for i in range(8)]


def test_actor_pool_runs_the_initializer_in_each_worker(ray_module):
    with RayExecutor(
        max_workers=2, use_actors=True, initializer=_set_mark, initargs=("ready",)
    ) as ex:
        assert list(ex.map(_read_mark, range(6))) == ["ready"] * 6
        assert ex.submit(_square, 5).result(timeout=60) == 25


def test_as_completed_sees_every_future(ray_module):
    with RayExecutor(max_workers=2, use_actors=True) as ex:
        futures = {ex.submit(_square, i): i for i in range(6)}
        got = {futures[f]: f.result() for f in concurrent.futures.as_completed(futures)}
    assert got == {i: i * i for i in range(6)}


def test_no_submit_after_shutdown(ray_module):
    ex = RayExecutor()
    ex.shutdown()
    with pytest.raises(RuntimeError, match="after shutdown"):
        ex.submit(_square, 1)


def test_initializer_needs_actors(ray_module):
    with pytest.raises(ValueError, match="use_actors=True"):
        RayExecutor(initializer=_set_mark, initargs=("x",))
    with pytest.raises(ValueError, match="max_workers"):
        RayExecutor(max_workers=0)


def test_an_executor_that_started_ember_stops_it(shutdown_only):
    assert not ray.is_initialized()
    with RayExecutor(num_cpus=1) as ex:
        assert ray.is_initialized()
        assert ex.submit(_square, 3).result(timeout=60) == 9
    assert not ray.is_initialized()


def test_shutdown_can_cancel_what_has_not_started(ray_module):
    ex = RayExecutor(max_workers=1)
    futures = [ex.submit(_square, i) for i in range(30)]
    ex.shutdown(wait=True, cancel_futures=True)
    for i, f in enumerate(futures):
        assert f.done()
        assert f.cancelled() or f.result() == i * i
