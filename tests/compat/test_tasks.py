"""Remote functions: calling, options, arguments, multiple returns, generators,
nesting, retries and cancellation."""

from __future__ import annotations

import os

import pytest

import ember as ray
from ember import exceptions


@ray.remote
def square(x):
    return x * x


def test_remote_function_bare_decorator(ray_module):
    refs = [square.remote(i) for i in range(4)]
    assert ray.get(refs) == [0, 1, 4, 9]


def test_remote_function_with_options_decorator(ray_module):
    @ray.remote(num_cpus=0.5, max_retries=1)
    def add(a, b=10):
        return a + b

    assert ray.get(add.remote(1)) == 11
    assert ray.get(add.remote(1, b=2)) == 3
    assert ray.get(add.remote(a=5, b=5)) == 10


def test_options_returns_callable_with_remote(ray_module):
    @ray.remote
    def who():
        return ray.get_runtime_context().get_assigned_resources()

    assert ray.get(who.options(num_cpus=2).remote()) == {"CPU": 2.0}
    assert ray.get(who.options(num_cpus=0, resources={"custom": 1}).remote()) == {
        "custom": 1.0
    }
    # .options() does not change the original
    assert ray.get(who.remote()) == {"CPU": 1.0}


def test_calling_remote_function_directly_raises_type_error(ray_module):
    with pytest.raises(TypeError, match=r"remote\(\)"):
        square(3)


def test_args_by_value_and_by_ref(ray_module):
    @ray.remote
    def describe(a, b):
        return type(a).__name__, a, type(b).__name__, b

    ref = ray.put(41)
    assert ray.get(describe.remote(ref, [1, 2])) == ("int", 41, "list", [1, 2])
    assert ray.get(describe.remote(square.remote(3), b="x")) == ("int", 9, "str", "x")


def test_mixed_ref_args_small_large_buffers_and_containing_refs(ray_module):
    import numpy as np

    @ray.remote
    def combine(small, big, arr, holder, kw=None):
        assert isinstance(holder[0], ray.ObjectRef)
        return small, len(big), int(arr.sum()), ray.get(holder[0]), kw

    small = ray.put("s")
    big = ray.put(b"x" * (2 << 20))  # stored in shared memory
    arr = ray.put(np.arange(1000))  # small, with an out-of-band buffer
    holder = ray.put([ray.put(7)])  # a value that holds a ref
    kw = square.remote(5)
    out = ray.get(combine.remote(small, big, arr, holder, kw=kw))
    assert out == ("s", 2 << 20, 499500, 7, 25)

    @ray.remote
    def fail():
        raise ValueError("dependency failed")

    with pytest.raises(ValueError, match="dependency failed"):
        ray.get(combine.remote(small, big, arr, holder, kw=fail.remote()))


def test_refs_nested_in_containers_stay_refs(ray_module):
    @ray.remote
    def inspect(items, mapping):
        assert all(isinstance(r, ray.ObjectRef) for r in items)
        assert isinstance(mapping["k"], ray.ObjectRef)
        return sum(ray.get(items)) + ray.get(mapping["k"])

    refs = [ray.put(i) for i in range(5)]
    assert ray.get(inspect.remote(refs, {"k": ray.put(100)})) == 110


def test_num_returns_two(ray_module):
    @ray.remote(num_returns=2)
    def pair():
        return "a", "b"

    refs = pair.remote()
    assert len(refs) == 2
    assert all(isinstance(r, ray.ObjectRef) for r in refs)
    first, second = refs
    assert ray.get(first) == "a"
    assert ray.get(second) == "b"


def test_num_returns_via_options(ray_module):
    @ray.remote
    def three():
        return 1, 2, 3

    a, b, c = three.options(num_returns=3).remote()
    assert ray.get([a, b, c]) == [1, 2, 3]


def test_num_returns_zero_returns_none(ray_module, counter_cls, wait_for):
    counter = counter_cls.remote()

    @ray.remote(num_returns=0)
    def side_effect(c):
        ray.get(c.incr.remote())

    assert side_effect.remote(counter) is None
    wait_for(lambda: ray.get(counter.get.remote()) == 1, message="task ran")


def test_streaming_generator(ray_module):
    @ray.remote(num_returns="streaming")
    def count_up(n):
        for i in range(n):
            yield i * 10

    gen = count_up.remote(4)
    assert isinstance(gen, ray.ObjectRefGenerator)
    values = []
    for ref in gen:
        assert isinstance(ref, ray.ObjectRef)
        values.append(ray.get(ref))
    assert values == [0, 10, 20, 30]


def test_streaming_generator_next_and_stop(ray_module):
    @ray.remote(num_returns="streaming")
    def two():
        yield "x"
        yield "y"

    gen = two.remote()
    assert ray.get(next(gen)) == "x"
    assert ray.get(next(gen)) == "y"
    with pytest.raises(StopIteration):
        next(gen)


def test_generator_function_defaults_to_streaming(ray_module):
    @ray.remote
    def plain_generator():
        yield 1
        yield 2

    gen = plain_generator.remote()
    assert isinstance(gen, ray.ObjectRefGenerator)
    assert [ray.get(r) for r in gen] == [1, 2]


def test_streaming_generator_error_after_items(ray_module):
    @ray.remote(num_returns="streaming")
    def fails_midway():
        yield 1
        yield 2
        raise ValueError("generator broke")

    results = []
    messages = []
    for ref in fails_midway.remote():
        try:
            results.append(ray.get(ref))
        except ValueError as exc:
            results.append("error")
            messages.append(str(exc))
    assert results == [1, 2, "error"]
    assert "generator broke" in messages[0]


@pytest.mark.cluster_only(
    "in local mode a generator runs to its end before .remote() returns"
)
def test_streaming_generator_yields_before_finishing(ray_module, signal_cls):
    signal = signal_cls.remote()

    @ray.remote(num_returns="streaming")
    def blocked_after_first(sig):
        yield "first"
        ray.get(sig.wait.remote())
        yield "second"

    gen = blocked_after_first.remote(signal)
    # The first item is available while the generator is still blocked.
    assert ray.get(next(gen), timeout=60) == "first"
    ray.get(signal.send.remote())
    assert ray.get(next(gen), timeout=60) == "second"


def test_tasks_submitting_tasks(ray_module):
    @ray.remote
    def fan_out(n):
        return sum(ray.get([square.remote(i) for i in range(n)]))

    assert ray.get(fan_out.remote(5)) == 0 + 1 + 4 + 9 + 16


def test_task_returning_a_ref(ray_module):
    @ray.remote
    def make_ref():
        return square.remote(7)

    inner = ray.get(make_ref.remote())
    assert isinstance(inner, ray.ObjectRef)
    assert ray.get(inner) == 49


def test_task_returning_put_ref_outlives_task(ray_module):
    @ray.remote
    def put_inside():
        return [ray.put("payload")]

    (inner,) = ray.get(put_inside.remote())
    assert ray.get(inner) == "payload"


@pytest.fixture
def attempt():
    """A function that records one attempt in a file (which survives the worker dying)
    and returns the count so far. Made inside the fixture so that it is shipped to
    workers by value: test modules are not importable on workers."""

    def record(path):
        with open(path, "a") as f:
            f.write("x\n")
        with open(path) as f:
            return sum(1 for _ in f)

    return record


@pytest.mark.cluster_only("os._exit in a task would end the driver in local mode")
def test_max_retries_after_worker_crash(ray_module, tmp_path, attempt):
    path = str(tmp_path / "attempts")

    @ray.remote(max_retries=3)
    def crash_twice(p):
        n = attempt(p)
        if n <= 2:
            os._exit(1)
        return n

    assert ray.get(crash_twice.remote(path)) == 3


@pytest.mark.cluster_only("os._exit in a task would end the driver in local mode")
def test_worker_crash_without_retries_raises_worker_crashed(
    ray_module, tmp_path, attempt
):
    path = str(tmp_path / "attempts")

    @ray.remote(max_retries=0)
    def crash(p):
        attempt(p)
        os._exit(1)

    with pytest.raises(exceptions.WorkerCrashedError):
        ray.get(crash.remote(path))
    with open(path) as f:
        assert len(f.readlines()) == 1


@pytest.mark.cluster_only("os._exit in a task would end the driver in local mode")
def test_retries_run_out_after_repeated_crashes(ray_module, tmp_path, attempt):
    path = str(tmp_path / "attempts")

    @ray.remote
    def always_crash(p):
        attempt(p)
        os._exit(1)

    with pytest.raises(exceptions.WorkerCrashedError):
        ray.get(always_crash.options(max_retries=2).remote(path))
    with open(path) as f:
        assert len(f.readlines()) == 3


def test_application_errors_not_retried_by_default(ray_module, tmp_path, attempt):
    path = str(tmp_path / "attempts")

    @ray.remote(max_retries=3)
    def flaky(p):
        attempt(p)
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        ray.get(flaky.remote(path))
    with open(path) as f:
        assert len(f.readlines()) == 1


def test_retry_exceptions_true(ray_module, tmp_path, attempt):
    path = str(tmp_path / "attempts")

    @ray.remote(max_retries=3, retry_exceptions=True)
    def flaky(p):
        n = attempt(p)
        if n < 3:
            raise RuntimeError(f"attempt {n}")
        return n

    assert ray.get(flaky.remote(path)) == 3


def test_retry_exceptions_true_runs_out(ray_module, tmp_path, attempt):
    path = str(tmp_path / "attempts")

    @ray.remote(max_retries=2, retry_exceptions=True)
    def always(p):
        n = attempt(p)
        raise RuntimeError(f"attempt {n}")

    with pytest.raises(RuntimeError, match="attempt 3"):
        ray.get(always.remote(path))


def test_retry_exceptions_list(ray_module, tmp_path, attempt):
    @ray.remote(max_retries=3, retry_exceptions=[ValueError])
    def flaky(p, exc_type):
        n = attempt(p)
        if n < 3:
            raise exc_type(f"attempt {n}")
        return n

    retried = str(tmp_path / "value")
    assert ray.get(flaky.remote(retried, ValueError)) == 3

    not_retried = str(tmp_path / "key")
    with pytest.raises(KeyError):
        ray.get(flaky.remote(not_retried, KeyError))
    with open(not_retried) as f:
        assert len(f.readlines()) == 1


@pytest.mark.cluster_only(
    "in local mode a task has finished when .remote() returns: nothing to cancel"
)
def test_cancel_pending_task(ray_module, signal_cls):
    signal = signal_cls.remote()

    # "custom" is 2 in the module cluster: the blocker takes both, so the
    # second task cannot start.
    @ray.remote(num_cpus=0, resources={"custom": 2})
    def blocker(sig):
        ray.get(sig.wait.remote())
        return "blocker done"

    @ray.remote(num_cpus=0, resources={"custom": 1})
    def queued():
        return "should not run"

    running = blocker.remote(signal)
    pending = queued.remote()
    ready, _ = ray.wait([pending], timeout=0.5)
    assert ready == []
    ray.cancel(pending)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(pending, timeout=60)
    ray.get(signal.send.remote())
    assert ray.get(running, timeout=60) == "blocker done"


@pytest.mark.cluster_only(
    "in local mode a task has finished when .remote() returns: nothing to cancel"
)
def test_cancel_running_task(ray_module, signal_cls, wait_for):
    never = signal_cls.remote()

    @ray.remote
    def stuck(forever):
        ray.get(forever.wait.remote())  # never sent

    ref = stuck.remote(never)
    wait_for(lambda: ray.get(never.num_waiting.remote()) == 1, message="task running")
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)


@pytest.mark.cluster_only(
    "in local mode a task has finished when .remote() returns: nothing to cancel"
)
def test_cancel_running_python_loop(ray_module, signal_cls, wait_for):
    started = signal_cls.remote()

    @ray.remote
    def spin(sig):
        import time

        sig.wait.remote(should_wait=True)  # registers as a waiter
        while True:
            time.sleep(0.01)

    ref = spin.remote(started)
    wait_for(lambda: ray.get(started.num_waiting.remote()) == 1, message="task running")
    ray.cancel(ref)
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)
    ray.get(started.send.remote())


@pytest.mark.cluster_only(
    "in local mode a task has finished when .remote() returns: nothing to cancel"
)
def test_force_cancel_running_task(ray_module, signal_cls, wait_for):
    never = signal_cls.remote()

    @ray.remote(max_retries=3)
    def stuck(forever):
        ray.get(forever.wait.remote())

    ref = stuck.remote(never)
    wait_for(lambda: ray.get(never.num_waiting.remote()) == 1, message="task running")
    ray.cancel(ref, force=True)
    # force-cancelled tasks are not retried
    with pytest.raises(exceptions.TaskCancelledError):
        ray.get(ref, timeout=60)


def test_cluster_still_works_after_cancel(ray_module):
    assert ray.get(square.remote(12)) == 144
