"""get, put, wait, cancel: the object API."""

from __future__ import annotations

from typing import Any

from ember.api.runtime_access import runtime
from ember.api.validation import check_bool, check_timeout
from ember.runtime.object_ref import ObjectRef, ObjectRefGenerator


def get(object_refs: Any, *, timeout: float | None = None) -> Any:
    """The value(s) of one ObjectRef or a list of them, waiting until ready.

    Raises:
        GetTimeoutError: not ready within ``timeout`` seconds.
        TaskError: the task raised (also an instance of the user's exception).
    """
    if timeout is not None:
        check_timeout("get() 'timeout'", timeout, ValueError)
    single = isinstance(object_refs, ObjectRef)
    if single:
        refs = [object_refs]
    elif isinstance(object_refs, ObjectRefGenerator):
        refs = list(object_refs)
    elif isinstance(object_refs, list):
        refs = list(object_refs)
        for r in refs:
            if not isinstance(r, ObjectRef):
                raise TypeError(
                    f"get() expected a list of ObjectRefs, but an element is of type "
                    f"{type(r).__name__}: {r!r}"
                )
    else:
        raise ValueError(
            "get() expected an ObjectRef or a list of ObjectRefs, got "
            f"{type(object_refs).__name__}: {object_refs!r}"
        )
    values = runtime().get(refs, timeout)
    return values[0] if single else values


def put(value: Any, *, _owner: Any = None) -> ObjectRef:
    """Store ``value`` in the object store; return its ObjectRef."""
    if isinstance(value, ObjectRef):
        raise TypeError(
            "Calling put() on an ObjectRef is not allowed: put() stores a value. To "
            "pass a reference around, put it inside a list or dict, e.g. put([ref])."
        )
    return runtime().put(value)


def wait(
    ray_waitables: list[ObjectRef | ObjectRefGenerator],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[Any], list[Any]]:
    """Wait until ``num_returns`` of the refs are ready (or ``timeout`` passes).

    The checks and their order are Ray's: a single ref or a non-list is a
    TypeError, a negative ``timeout`` a ValueError, an empty list returns
    ``([], [])`` whatever ``num_returns`` says, then duplicates and
    ``num_returns`` out of range are ValueErrors. ``fetch_local`` must be a
    bool (Ray accepts anything).

    Returns:
        ``(ready, not_ready)``, each in the order of ``ray_waitables``.
    """
    if isinstance(ray_waitables, (ObjectRef, ObjectRefGenerator)):
        raise TypeError(
            "wait() expected a list of ObjectRef or ObjectRefGenerator, got a single "
            f"ObjectRef or ObjectRefGenerator {ray_waitables!r}"
        )
    if not isinstance(ray_waitables, list):
        raise TypeError(
            "wait() expected a list of ObjectRef or ObjectRefGenerator, got "
            f"{type(ray_waitables)}"
        )
    if (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and timeout < 0
    ):
        raise ValueError(
            f"The 'timeout' argument must be nonnegative. Received {timeout}"
        )
    check_timeout("wait() 'timeout'", timeout)
    generators = False
    for r in ray_waitables:
        if type(r) is ObjectRef:  # the common case, checked first
            continue
        if isinstance(r, ObjectRefGenerator):
            generators = True
        elif not isinstance(r, ObjectRef):
            raise TypeError(
                "wait() expected a list of ObjectRef or ObjectRefGenerator, got list "
                f"containing {type(r)}"
            )
    check_bool("wait() 'fetch_local'", fetch_local)
    rt = runtime()  # as in Ray, wait() starts ember even for an empty list
    if not ray_waitables:
        return [], []
    if len(set(ray_waitables)) != len(ray_waitables):
        raise ValueError("Wait requires a list of unique ray_waitables.")
    if isinstance(num_returns, bool):
        num_returns = int(num_returns)
    if not isinstance(num_returns, int):
        raise TypeError(
            f"wait() 'num_returns' must be an int, got {type(num_returns).__name__}"
        )
    if num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns}.")
    if num_returns > len(ray_waitables):
        raise ValueError(
            "num_returns cannot be greater than the number of ray_waitables "
            "provided to ray.wait."
        )
    # A wait loop calls this once per ready ref: no per-element work beyond the
    # checks above unless the list holds generators.
    refs: list[ObjectRef] = (
        [_waitable_ref(w) for w in ray_waitables] if generators else ray_waitables  # type: ignore[assignment]  # only ObjectRefs in it
    )
    done = rt.wait(refs, num_returns, timeout, fetch_local)
    ready: list[Any] = []
    not_ready: list[Any] = []
    for w, d in zip(ray_waitables, done, strict=True):
        if d and len(ready) < num_returns:
            ready.append(w)
        else:
            not_ready.append(w)
    return ready, not_ready


def _waitable_ref(w: ObjectRef | ObjectRefGenerator) -> ObjectRef:
    """The ref whose readiness ``wait`` checks (a generator: its next item)."""
    if isinstance(w, ObjectRef):
        return w
    raise NotImplementedError(
        "wait() on an ObjectRefGenerator is not supported yet: wait on the refs it "
        "yields (next(gen)) instead"
    )


def cancel(
    ray_waitable: ObjectRef, *, force: bool = False, recursive: bool = True
) -> None:
    """Cancel the task that produces ``ray_waitable`` (queued or running).

    A cancelled task's ``get`` raises ``TaskCancelledError``. ``force=True``
    kills the worker running it.
    """
    if not isinstance(ray_waitable, ObjectRef):
        raise TypeError(
            f"cancel() expected an ObjectRef, got {type(ray_waitable).__name__}"
        )
    check_bool("cancel() 'force'", force)
    check_bool("cancel() 'recursive'", recursive)
    runtime().cancel(ray_waitable, force, recursive)
