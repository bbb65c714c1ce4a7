"""Hooks into Dask-on-ember scheduling: ``RayDaskCallback`` and ``ProgressBarCallback``.

A ``RayDaskCallback`` is a Dask ``Callback`` (its ``start``/``pretask``/...
hooks still work) with six more, named as in Ray:

* ``ray_presubmit(task, key, deps)`` in the driver before a task is submitted;
  a non-None return is used as the task's result and nothing is submitted;
* ``ray_postsubmit(task, key, deps, object_ref)`` after it was submitted;
* ``ray_pretask(key, values)`` in the worker before the Dask task runs (its
  return value goes to ``ray_posttask`` as ``pre_state``);
* ``ray_posttask(key, result, pre_state)`` in the worker after it ran;
* ``ray_postsubmit_all(object_refs, dsk)`` once everything was submitted;
* ``ray_finish(result)`` with the final result, before Dask repackages it.
"""

from __future__ import annotations

import contextlib
import datetime
from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any, ClassVar, NamedTuple

from dask.callbacks import Callback

import ember

#: Name of the actor that records what ProgressBarCallback saw (Ray's name).
PROGRESS_ACTOR_NAME = "_dask_on_ray_pb"


class RayCallback(NamedTuple):
    """The six ember-side hooks of one callback (None where not given)."""

    ray_presubmit: Callable[..., Any] | None
    ray_postsubmit: Callable[..., Any] | None
    ray_pretask: Callable[..., Any] | None
    ray_posttask: Callable[..., Any] | None
    ray_postsubmit_all: Callable[..., Any] | None
    ray_finish: Callable[..., Any] | None


class RayCallbacks(NamedTuple):
    """Each hook of every active callback, gathered per hook."""

    ray_presubmit_cbs: list[Callable[..., Any]]
    ray_postsubmit_cbs: list[Callable[..., Any]]
    ray_pretask_cbs: list[Callable[..., Any]]
    ray_posttask_cbs: list[Callable[..., Any]]
    ray_postsubmit_all_cbs: list[Callable[..., Any]]
    ray_finish_cbs: list[Callable[..., Any]]


_HOOKS = RayCallback._fields
_WORKER_HOOKS = ("ray_pretask", "ray_posttask")


class RayDaskCallback(Callback):
    """A Dask callback with ember-side hooks; pass hooks as keywords or override ``_<hook>``.

    Use it as a context manager around ``compute()``, or ``register()`` it.
    """

    ray_active: ClassVar[set[RayCallback]] = set()

    def __init__(self, **kwargs: Any) -> None:
        for hook in _HOOKS:
            fn = kwargs.pop(hook, None)
            if fn is not None:
                setattr(self, "_" + hook, fn)
        super().__init__(**kwargs)

    @property
    def _ray_callback(self) -> RayCallback:
        return RayCallback(*(getattr(self, "_" + hook, None) for hook in _HOOKS))

    def __enter__(self) -> RayDaskCallback:
        self._ray_cm = add_ray_callbacks(self)
        self._ray_cm.__enter__()
        super().__enter__()
        return self

    def __exit__(self, *args: Any) -> None:
        super().__exit__(*args)
        self._ray_cm.__exit__(*args)

    def register(self) -> None:
        type(self).ray_active.add(self._ray_callback)
        super().register()

    def unregister(self) -> None:
        type(self).ray_active.discard(self._ray_callback)
        super().unregister()


class add_ray_callbacks:
    """Make ``callbacks`` active inside a ``with`` block."""

    def __init__(self, *callbacks: RayDaskCallback | RayCallback) -> None:
        self.callbacks = [normalize_ray_callback(c) for c in callbacks]
        RayDaskCallback.ray_active.update(self.callbacks)

    def __enter__(self) -> add_ray_callbacks:
        return self

    def __exit__(self, *args: Any) -> None:
        for c in self.callbacks:
            RayDaskCallback.ray_active.discard(c)


def normalize_ray_callback(cb: RayDaskCallback | RayCallback) -> RayCallback:
    """The hooks tuple of ``cb``; TypeError for anything else."""
    if isinstance(cb, RayDaskCallback):
        return cb._ray_callback
    if isinstance(cb, RayCallback):
        return cb
    raise TypeError(
        f"a Dask-on-ember callback must be a RayDaskCallback or a RayCallback, got {cb!r}"
    )


def unpack_ray_callbacks(cbs: Any) -> RayCallbacks:
    """Gather the hooks of ``cbs`` per hook.

    Hooks a callback lacks are left out, except in the worker-side pair
    (``ray_pretask``/``ray_posttask``): those lists keep one entry (maybe None)
    per callback, so each ``pre_state`` reaches its own callback's posttask.
    Lists with no hook at all are empty.
    """
    tuples = [normalize_ray_callback(c) for c in cbs or ()]
    lists = []
    for hook in _HOOKS:
        found = [getattr(t, hook) for t in tuples]
        if hook in _WORKER_HOOKS:
            lists.append(found if any(found) else [])
        else:
            lists.append([f for f in found if f is not None])
    return RayCallbacks(*lists)


@contextlib.contextmanager
def local_ray_callbacks(callbacks: Any = None) -> Iterator[Any]:
    """The callbacks for this scheduler run: ``callbacks``, or the globally active ones.

    The active ones are taken away for the run, so a scheduler nested inside a
    task does not fire them again.
    """
    take_global = callbacks is None
    if take_global:
        callbacks, RayDaskCallback.ray_active = RayDaskCallback.ray_active, set()
    try:
        yield callbacks or ()
    finally:
        if take_global:
            RayDaskCallback.ray_active = callbacks


class _ProgressRecorder:
    """Actor body: when each Dask key was submitted, started and finished."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.submitted: dict[Any, datetime.datetime] = {}
        self.scheduled: dict[Any, datetime.datetime] = {}
        self.finished: dict[Any, datetime.datetime] = {}
        self.submission_queue: list[tuple[Any, datetime.datetime]] = []
        self.deps: defaultdict[Any, set[Any]] = defaultdict(set)

    def ready(self) -> None:
        return None

    def submit(self, key: Any, deps: Any, now: datetime.datetime) -> None:
        self.deps[key].update(deps)
        self.submitted[key] = now
        self.submission_queue.append((key, now))

    def task_scheduled(self, key: Any, now: datetime.datetime) -> None:
        self.scheduled[key] = now

    def finish(self, key: Any, now: datetime.datetime) -> None:
        self.finished[key] = now

    def result(self) -> tuple[int, int]:
        return len(self.submitted), len(self.finished)

    def report(self) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key, done in self.finished.items():
            started = self.scheduled.get(key, done)
            submitted = self.submitted.get(key, started)
            out[key] = {
                "execution_time": (done - started).total_seconds(),
                "scheduling_time": (started - submitted).total_seconds(),
            }
        out["submission_order"] = list(self.submission_queue)
        return out


class ProgressBarCallback(RayDaskCallback):
    """Records each task's submission, start and end in a named actor.

    Pass ``_ray_enable_progress_bar=True`` to the scheduler to see a progress
    line while the graph runs; the actor's ``report()`` has the timings.
    """

    def __init__(self) -> None:
        super().__init__()
        try:
            self.pb = ember.get_actor(PROGRESS_ACTOR_NAME)
            ember.get(self.pb.reset.remote())
        except ValueError:
            recorder = ember.remote(num_cpus=0)(_ProgressRecorder)
            self.pb = recorder.options(name=PROGRESS_ACTOR_NAME).remote()
            ember.get(self.pb.ready.remote())

    def _ray_postsubmit(self, task: Any, key: Any, deps: Any, object_ref: Any) -> None:
        self.pb.submit.remote(key, list(deps), datetime.datetime.now())

    def _ray_pretask(self, key: Any, object_refs: Any) -> None:
        self.pb.task_scheduled.remote(key, datetime.datetime.now())

    def _ray_posttask(self, key: Any, result: Any, pre_state: Any) -> None:
        self.pb.finish.remote(key, datetime.datetime.now())

    def _ray_finish(self, result: Any) -> None:
        print("All tasks are completed.")  # noqa: T201 - as in Ray
