"""What a Ray user sees when things go wrong: exceptions that do not pickle, remote
tracebacks, argument errors at the call site, warnings and logs on the driver."""

from __future__ import annotations

import threading

import pytest

import ember as ray
from ember import exceptions


def _exception_classes():
    # Defined in a function: pickled by value, the workers never import this module.
    class TwoArgs(Exception):
        def __init__(self, a, b):
            super().__init__(f"two args {a} and {b}")
            self.a, self.b = a, b

    class HoldsLock(Exception):
        def __init__(self, message):
            super().__init__(message)
            self.lock = threading.Lock()

    return TwoArgs, HoldsLock


# -- 1. exceptions that cannot travel as themselves --------------------------------------
def test_exception_with_two_required_args_keeps_its_message(ray_module, counter_cls):
    TwoArgs, _ = _exception_classes()
    attempts = counter_cls.remote()

    @ray.remote(max_retries=3)
    def fails(counter):
        ray.get(counter.incr.remote())
        raise TwoArgs(1, 2)

    with pytest.raises(exceptions.RayError) as info:
        ray.get(fails.remote(attempts))
    assert not isinstance(info.value, exceptions.WorkerCrashedError)
    text = str(info.value)
    assert "two args 1 and 2" in text
    assert "test_error_output.py" in text  # the remote traceback is kept
    assert ray.get(attempts.get.remote()) == 1  # the worker did not die


def test_exception_with_unpicklable_attribute_keeps_its_traceback(
    ray_module, counter_cls
):
    _, HoldsLock = _exception_classes()
    attempts = counter_cls.remote()

    @ray.remote(max_retries=3)
    def fails(counter):
        ray.get(counter.incr.remote())
        raise HoldsLock("the lock stays here")

    with pytest.raises(exceptions.RayTaskError) as info:
        ray.get(fails.remote(attempts))
    assert not isinstance(info.value, exceptions.WorkerCrashedError)
    text = str(info.value)
    assert "the lock stays here" in text
    assert "test_error_output.py" in text
    assert ray.get(attempts.get.remote()) == 1


@pytest.mark.cluster_only("the exception crosses a process boundary only on a cluster")
def test_unpicklable_cause_is_replaced_by_a_ray_error(ray_module):
    _, HoldsLock = _exception_classes()

    @ray.remote
    def fails():
        raise HoldsLock("unpicklable")

    with pytest.raises(exceptions.RayTaskError) as info:
        ray.get(fails.remote())
    assert isinstance(info.value.cause, exceptions.RayError)
    assert "isn't serializable" in str(info.value.cause)


def test_actor_survives_exceptions_that_do_not_pickle(ray_module):
    TwoArgs, HoldsLock = _exception_classes()

    @ray.remote
    class Thrower:
        def two(self):
            raise TwoArgs("x", "y")

        def lock(self):
            raise HoldsLock("actor lock")

        def ok(self):
            return "still here"

    t = Thrower.remote()
    with pytest.raises(exceptions.RayError, match="two args x and y"):
        ray.get(t.two.remote())
    with pytest.raises(exceptions.RayError, match="actor lock"):
        ray.get(t.lock.remote())
    assert ray.get(t.ok.remote()) == "still here"


# -- 2. remote tracebacks name the user's file and line -----------------------------------
def test_remote_traceback_names_file_and_source_line(ray_module):
    def helper(x):
        return 10 // x  # the line that divides

    @ray.remote
    def divide(x):
        return helper(x)

    with pytest.raises(ZeroDivisionError) as info:
        ray.get(divide.remote(0))
    text = str(info.value)
    assert "<dynamic-code>" not in text
    assert 'test_error_output.py", line' in text
    assert "in helper" in text
    assert "# the line that divides" in text


# -- 3. wrong arguments raise at the call site -------------------------------------------
def test_wrong_arguments_raise_at_remote(ray_module):
    @ray.remote
    def one(x, *, scale=1):
        return x * scale

    with pytest.raises(TypeError, match="too many positional arguments"):
        one.remote(1, 2)
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        one.remote()
    with pytest.raises(TypeError, match="unexpected keyword argument 'y'"):
        one.remote(1, y=2)
    with pytest.raises(TypeError, match="too many positional arguments"):
        one.options(name="renamed").remote(1, 2)
    assert ray.get(one.remote(2, scale=3)) == 6
    assert ray.get(one.remote(x=4)) == 4


def test_wrong_arguments_to_actor_raise_at_remote(ray_module):
    @ray.remote
    class Adder:
        def __init__(self, base):
            self.base = base

        def add(self, x, y=0):
            return self.base + x + y

        @staticmethod
        def static(a):
            return a

    with pytest.raises(TypeError, match="missing a required argument: 'base'"):
        Adder.remote()
    with pytest.raises(TypeError, match="too many positional arguments"):
        Adder.options(name=None).remote(1, 2)
    a = Adder.remote(10)
    with pytest.raises(TypeError, match="too many positional arguments"):
        a.add.remote(1, 2, 3)
    with pytest.raises(TypeError, match="missing a required argument: 'x'"):
        a.add.remote(y=1)
    with pytest.raises(TypeError, match="too many positional arguments"):
        a.static.remote(1, 2)
    assert ray.get(a.add.remote(1, y=2)) == 13
    assert ray.get(a.static.remote(5)) == 5


# -- 4. what a function captures -------------------------------------------------------
@pytest.mark.cluster_only("local mode does not pickle functions")
def test_function_capturing_a_large_object_warns_once(ray_module, capfd, wait_for):
    big = b"x" * 11_000_000

    @ray.remote
    def uses_big():
        return len(big)

    assert ray.get([uses_big.remote(), uses_big.remote()]) == [11_000_000] * 2
    seen = []

    def warned():
        out, err = capfd.readouterr()
        seen.append(out + err)
        return "uses_big is very large" in "".join(seen)

    wait_for(warned, timeout=30, message="no warning about the large function")
    assert "".join(seen).count("uses_big is very large") == 1


@pytest.mark.cluster_only("local mode does not pickle functions")
def test_unpicklable_capture_names_function_and_variable(ray_module):
    lock_in_scope = threading.Lock()

    @ray.remote
    def uses_lock():
        with lock_in_scope:
            return 1

    with pytest.raises(TypeError) as info:
        uses_lock.remote()
    text = str(info.value)
    assert "uses_lock" in text
    assert "lock_in_scope" in text


# -- 5. failed results nobody fetched ------------------------------------------------------
@pytest.mark.cluster_only("local mode raises nothing for a result nobody fetches")
def test_unfetched_failure_is_reported_when_dropped(
    ray_module, capfd, caplog, wait_for
):
    @ray.remote(max_retries=0)
    def fails(tag):
        raise ValueError(f"failure {tag}")

    fetched = fails.remote("that was fetched")
    with pytest.raises(ValueError):
        ray.get(fetched)
    del fetched
    fails.remote("nobody fetched")
    seen = []

    def reported():
        out, err = capfd.readouterr()
        seen.append(out + err)
        # Ray reports through its logger, ember straight to stderr
        return "failure nobody fetched" in "".join(seen) + caplog.text

    wait_for(reported, timeout=30, message="the dropped failure was not reported")
    text = "".join(seen) + caplog.text
    assert "Unhandled error" in text
    assert "failure that was fetched" not in text


# -- 6. what reaches the driver -----------------------------------------------------------
def _collect(capfd, seen):
    def has(text):
        out, err = capfd.readouterr()
        seen.append(out + err)
        return text in "".join(seen)

    return has


@pytest.mark.cluster_only("in local mode logging already happens in the driver")
def test_logging_in_tasks_and_actors_reaches_the_driver(ray_module, capfd, wait_for):
    import logging

    @ray.remote
    def logs_warning():
        logging.getLogger("user.module").warning("warning logged by a task")
        return 1

    @ray.remote
    class Logs:
        def log(self):
            logging.getLogger("user.actor").error("error logged by an actor")
            return 2

    assert ray.get(logs_warning.remote()) == 1
    actor = Logs.remote()
    assert ray.get(actor.log.remote()) == 2
    seen = []
    has = _collect(capfd, seen)
    wait_for(lambda: has("warning logged by a task"), timeout=30)
    wait_for(lambda: has("error logged by an actor"), timeout=30)
    text = "".join(seen)
    line = next(x for x in text.splitlines() if "warning logged by a task" in x)
    assert "logs_warning pid=" in line


@pytest.mark.cluster_only("os._exit would end the driver in local mode")
def test_print_right_before_os_exit_reaches_the_driver(ray_module, capfd, wait_for):
    import os

    @ray.remote(max_retries=0)
    def last_words():
        print("last words before os._exit")
        os._exit(3)

    with pytest.raises(exceptions.WorkerCrashedError):
        ray.get(last_words.remote())
    has = _collect(capfd, [])
    wait_for(lambda: has("last words before os._exit"), timeout=30)


@pytest.mark.cluster_only("os._exit would end the driver in local mode")
def test_retry_after_worker_death_is_logged_once(
    ray_module, capfd, counter_cls, wait_for
):
    import os

    attempts = counter_cls.remote()

    @ray.remote(max_retries=1)
    def dies_once(counter):
        if ray.get(counter.incr.remote()) == 1:
            os._exit(1)
        return "second attempt"

    assert ray.get(dies_once.remote(attempts)) == "second attempt"
    seen = []
    has = _collect(capfd, seen)
    wait_for(lambda: has("retries remaining"), timeout=30)
    assert "".join(seen).count("1 retries remaining") == 1


# -- 9. addresses ----------------------------------------------------------------------------
@pytest.mark.cluster_only("an address names a cluster")
def test_address_without_port_is_malformed(shutdown_only):
    with pytest.raises(ValueError, match=r"Invalid address format: 192\.0\.2\.2"):
        ray.init(address="192.0.2.2")
    assert not ray.is_initialized()


@pytest.mark.cluster_only("local mode runs every task before cancel() could reach it")
def test_cancelled_task_is_not_reported_when_dropped(
    ray_module, signal_cls, capfd, caplog
):
    signal = signal_cls.remote()

    @ray.remote(num_cpus=4)
    def blocks(sig):
        ray.get(sig.wait.remote())

    running = blocks.remote(signal)
    queued = blocks.remote(signal)  # waits for the CPUs the first one holds
    ray.cancel(queued)
    with pytest.raises(ray.exceptions.TaskCancelledError):
        ray.get(queued)
    queued2 = blocks.remote(signal)
    ray.cancel(queued2)
    del queued2
    ray.get(signal.send.remote())
    ray.get(running)
    out, err = capfd.readouterr()
    assert "Unhandled error" not in out + err + caplog.text
