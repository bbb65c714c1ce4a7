"""How failures surface to the caller: task errors, custom exceptions, nesting,
unserializable arguments, infeasible requests."""

from __future__ import annotations

import threading

import pytest

import ember as ray
from ember import exceptions


def test_task_exception_is_catchable_as_original_type(ray_module):
    @ray.remote
    def boom():
        raise ValueError("bad value 42")

    with pytest.raises(ValueError, match="bad value 42") as info:
        ray.get(boom.remote())
    err = info.value
    assert isinstance(err, exceptions.RayTaskError)
    assert isinstance(err, exceptions.RayError)
    assert isinstance(err.cause, ValueError)
    text = str(err)
    assert "boom" in text
    assert "Traceback" in text or 'File "' in text
    assert "ValueError: bad value 42" in text


def test_task_error_in_list_get(ray_module):
    @ray.remote
    def maybe(x):
        if x == 2:
            raise IndexError("two")
        return x

    with pytest.raises(IndexError):
        ray.get([maybe.remote(i) for i in range(4)])


def test_custom_exception_class(ray_module):
    class InsufficientFunds(Exception):
        def __init__(self, needed, available):
            super().__init__(needed, available)
            self.needed = needed
            self.available = available

    @ray.remote
    def withdraw():
        raise InsufficientFunds(100, 7)

    with pytest.raises(InsufficientFunds) as info:
        ray.get(withdraw.remote())
    assert info.value.needed == 100
    assert info.value.available == 7
    assert isinstance(info.value, exceptions.RayTaskError)


def test_nested_task_failure(ray_module):
    @ray.remote
    def inner():
        raise ZeroDivisionError("inner failed")

    @ray.remote
    def outer():
        return ray.get(inner.remote())

    with pytest.raises(ZeroDivisionError) as info:
        ray.get(outer.remote())
    text = str(info.value)
    assert "outer" in text
    assert "inner" in text
    assert "inner failed" in text


def test_failed_dependency_propagates(ray_module):
    @ray.remote
    def fail():
        raise ValueError("upstream")

    @ray.remote
    def consume(x):
        return x

    with pytest.raises(ValueError, match="upstream"):
        ray.get(consume.remote(fail.remote()))


def test_actor_method_error_type(ray_module):
    @ray.remote
    class A:
        def bad(self):
            raise AttributeError("no such thing")

    with pytest.raises(AttributeError) as info:
        ray.get(A.remote().bad.remote())
    assert isinstance(info.value, exceptions.RayTaskError)
    assert "no such thing" in str(info.value)


def test_unserializable_argument_raises_at_call_site(ray_module):
    @ray.remote
    def take(x):
        return x

    with pytest.raises(TypeError) as info:
        take.remote({"lock": threading.Lock()})
    text = str(info.value)
    assert "serialize" in text
    assert "lock" in text


def test_unserializable_put_raises(ray_module):
    with pytest.raises(TypeError) as info:
        ray.put(threading.Lock())
    assert "lock" in str(info.value)


def test_unserializable_return_value(ray_module):
    @ray.remote
    def give_lock():
        return threading.Lock()

    with pytest.raises(Exception) as info:
        ray.get(give_lock.remote())
    assert "lock" in str(info.value).lower()


@pytest.mark.cluster_only("local mode has no scheduler: every task runs at once")
def test_infeasible_request_stays_pending(ray_module):
    @ray.remote(num_gpus=1)
    def needs_gpu():
        return "ran"

    ref = needs_gpu.remote()
    ready, not_ready = ray.wait([ref], timeout=1.0)
    assert ready == []
    assert not_ready == [ref]
    ray.cancel(ref)


@pytest.mark.cluster_only("local mode has no scheduler: every task runs at once")
def test_infeasible_custom_resource_stays_pending(ray_module):
    @ray.remote
    def needs_unicorn():
        return "ran"

    ref = needs_unicorn.options(resources={"unicorn": 1}).remote()
    ready, _ = ray.wait([ref], timeout=1.0)
    assert ready == []
    ray.cancel(ref)


def test_exception_hierarchy():
    assert issubclass(exceptions.RayTaskError, exceptions.RayError)
    assert issubclass(exceptions.RayActorError, exceptions.RayError)
    assert issubclass(exceptions.ActorDiedError, exceptions.RayActorError)
    assert issubclass(exceptions.GetTimeoutError, exceptions.RayError)
    assert issubclass(exceptions.GetTimeoutError, TimeoutError)
    assert issubclass(exceptions.WorkerCrashedError, exceptions.RayError)
    assert issubclass(exceptions.TaskCancelledError, exceptions.RayError)
    assert issubclass(exceptions.ObjectStoreFullError, exceptions.RayError)
    assert issubclass(exceptions.ObjectLostError, exceptions.RayError)
    assert issubclass(exceptions.OwnerDiedError, exceptions.ObjectLostError)
    assert issubclass(exceptions.ActorAlreadyExistsError, ValueError)
    # Top-level aliases
    assert ray.exceptions is exceptions
