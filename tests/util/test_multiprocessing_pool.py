"""ember.util.multiprocessing.Pool behaviour, written against the public API."""

from __future__ import annotations

import multiprocessing
import os
import threading

import pytest

import ember as ray
from ember.util.multiprocessing import Pool, TimeoutError


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def pool(cluster):
    with Pool(processes=2) as p:
        yield p


@ray.remote(num_cpus=0)
class Gate:
    """Holds calls until opened; lets tests order events without sleeping."""

    def __init__(self):
        import asyncio

        self.event = asyncio.Event()

    async def wait(self):
        await self.event.wait()

    async def open(self):
        self.event.set()


def _make_helpers():
    # Pool workers receive these functions pickled. Defining them in a local
    # scope makes cloudpickle ship them by value, so workers need not be able
    # to import this test module.
    def square(x):
        return x * x

    def add(x, y):
        return x + y

    def fail_on_three(x):
        if x == 3:
            raise ValueError("three")
        return x

    def get_pid(_):
        return os.getpid()

    def wait_for_gate(gate):
        ray.get(gate.wait.remote())
        return "opened"

    def set_init_value(value):
        os.environ["EMBER_UTIL_TEST_INIT"] = value

    def read_init_value(_):
        return os.environ.get("EMBER_UTIL_TEST_INIT")

    return (
        square,
        add,
        fail_on_three,
        get_pid,
        wait_for_gate,
        set_init_value,
        read_init_value,
    )


(
    square,
    add,
    fail_on_three,
    get_pid,
    wait_for_gate,
    _set_init_value,
    _read_init_value,
) = _make_helpers()


def test_timeout_error_is_multiprocessing_one():
    assert TimeoutError is multiprocessing.TimeoutError


def test_apply(pool):
    assert pool.apply(add, (1, 2)) == 3
    assert pool.apply(add, kwargs={"x": 1, "y": 5}) == 6


@pytest.mark.parametrize("chunksize", [None, 1, 3, 100])
def test_map_and_starmap(pool, chunksize):
    assert pool.map(square, range(20), chunksize=chunksize) == [
        x * x for x in range(20)
    ]
    pairs = [(i, i) for i in range(7)]
    assert pool.starmap(add, pairs, chunksize=chunksize) == [2 * i for i in range(7)]


def test_map_accepts_generators_and_empty_input(pool):
    assert pool.map(square, (x for x in range(5))) == [0, 1, 4, 9, 16]
    assert pool.map(square, []) == []


def test_map_spreads_over_workers(pool):
    assert len(set(pool.map(get_pid, range(8), chunksize=1))) == 2


def test_map_raises_task_exception(pool):
    with pytest.raises(ValueError, match="three"):
        pool.map(fail_on_three, range(6))


def test_apply_async_result_api_and_callbacks(pool):
    seen = []
    done = threading.Event()

    def on_result(value):
        seen.append(value)
        done.set()

    result = pool.apply_async(square, (4,), callback=on_result)
    assert result.get(timeout=60) == 16
    assert done.wait(60)
    assert seen == [16]
    assert result.ready()
    assert result.successful()


def test_async_error_callback(pool):
    errors = []
    result = pool.map_async(fail_on_three, range(6), error_callback=errors.append)
    result.wait()
    assert result.ready()
    assert not result.successful()
    with pytest.raises(ValueError, match="three"):
        result.get()
    assert len(errors) == 1
    assert isinstance(errors[0], ValueError)


def test_starmap_async_callback(pool):
    got = []
    result = pool.starmap_async(add, [(1, 2), (3, 4)], callback=got.append)
    assert result.get() == [3, 7]
    assert got == [[3, 7]]


def test_async_result_timeout(pool):
    gate = Gate.remote()
    result = pool.apply_async(wait_for_gate, (gate,))
    with pytest.raises(TimeoutError):
        result.get(timeout=0)
    result.wait(timeout=0)
    assert not result.ready()
    with pytest.raises(ValueError, match="not ready"):
        result.successful()
    ray.get(gate.open.remote())
    assert result.get() == "opened"


@pytest.mark.parametrize("chunksize", [1, 4])
def test_imap_ordered(pool, chunksize):
    assert list(pool.imap(square, range(15), chunksize=chunksize)) == [
        x * x for x in range(15)
    ]


def test_imap_unordered(pool):
    assert sorted(pool.imap_unordered(square, range(15), chunksize=2)) == [
        x * x for x in range(15)
    ]


def test_imap_is_lazy_over_unbounded_input(pool):
    def naturals():
        n = 0
        while True:
            yield n
            n += 1

    it = pool.imap(square, naturals())
    assert [next(it) for _ in range(10)] == [x * x for x in range(10)]


def test_imap_raises_per_item_and_times_out(pool):
    it = pool.imap(fail_on_three, range(5))
    assert [next(it) for _ in range(3)] == [0, 1, 2]
    with pytest.raises(ValueError, match="three"):
        next(it)
    assert next(it) == 4
    with pytest.raises(StopIteration):
        next(it)

    gate = Gate.remote()
    blocked = pool.imap(wait_for_gate, [gate])
    with pytest.raises(TimeoutError):
        blocked.next(timeout=0)
    ray.get(gate.open.remote())
    assert list(blocked) == ["opened"]


def test_imap_rejects_bad_chunksize(pool):
    with pytest.raises(ValueError, match="Chunksize"):
        pool.imap(square, range(3), chunksize=0)


def test_initializer_runs_in_each_worker(cluster):
    with Pool(processes=2, initializer=_set_init_value, initargs=("ready",)) as p:
        assert p.map(_read_init_value, range(4), chunksize=1) == ["ready"] * 4


def test_maxtasksperchild_replaces_workers(cluster):
    with Pool(processes=1, maxtasksperchild=1) as p:
        pids = p.map(get_pid, range(3), chunksize=1)
    assert len(set(pids)) == 3


def test_close_join_and_closed_pool(cluster):
    p = Pool(processes=2)
    result = p.map_async(square, range(6))
    with pytest.raises(ValueError, match="still running"):
        p.join()
    p.close()
    p.join()
    assert result.get() == [x * x for x in range(6)]  # queued work finishes
    for call in (
        lambda: p.apply(square, (1,)),
        lambda: p.map(square, [1]),
        lambda: p.imap(square, [1]),
    ):
        with pytest.raises(ValueError, match="Pool not running"):
            call()
    p.terminate()


def test_terminate(cluster):
    p = Pool(processes=1)
    p.terminate()
    p.join()
    with pytest.raises(ValueError, match="Pool not running"):
        p.map(square, [1])


def test_invalid_process_counts(cluster):
    with pytest.raises(ValueError, match=">0"):
        Pool(processes=0)
    with pytest.raises(ValueError, match="CPUs"):
        Pool(processes=1000)
