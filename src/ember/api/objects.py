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
    object_refs: list[ObjectRef],
    *,
    num_returns: int = 1,
    timeout: float | None = None,
    fetch_local: bool = True,
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """Wait until ``num_returns`` of the refs are ready (or ``timeout`` passes).

    Returns:
        ``(ready, not_ready)``, each in the order of ``object_refs``.
    """
    if isinstance(object_refs, ObjectRef) or not isinstance(object_refs, (list, tuple)):
        raise TypeError(
            f"wait() expected a list of ObjectRefs, got {type(object_refs).__name__}"
        )
    refs = list(object_refs)
    for r in refs:
        if not isinstance(r, ObjectRef):
            raise TypeError(
                f"wait() expected a list of ObjectRefs, got an element of type "
                f"{type(r).__name__}"
            )
    if len(set(refs)) != len(refs):
        raise ValueError("Wait requires a list of unique object refs.")
    if isinstance(num_returns, bool) or not isinstance(num_returns, int):
        raise TypeError(
            f"wait() 'num_returns' must be an int, got {type(num_returns).__name__}"
        )
    if num_returns <= 0:
        raise ValueError(f"Invalid number of objects to return {num_returns}.")
    if num_returns > len(refs):
        raise ValueError(
            "num_returns cannot be greater than the number of objects provided "
            f"to ember.wait ({num_returns} > {len(refs)})."
        )
    check_timeout("wait() 'timeout'", timeout)
    check_bool("wait() 'fetch_local'", fetch_local)
    if not refs:
        return [], []
    done = runtime().wait(refs, num_returns, timeout, fetch_local)
    ready: list[ObjectRef] = []
    not_ready: list[ObjectRef] = []
    for r, d in zip(refs, done, strict=True):
        if d and len(ready) < num_returns:
            ready.append(r)
        else:
            not_ready.append(r)
    return ready, not_ready


def cancel(
    object_ref: ObjectRef, *, force: bool = False, recursive: bool = True
) -> None:
    """Cancel the task that produces ``object_ref`` (queued or running).

    A cancelled task's ``get`` raises ``TaskCancelledError``. ``force=True``
    kills the worker running it.
    """
    if not isinstance(object_ref, ObjectRef):
        raise TypeError(
            f"cancel() expected an ObjectRef, got {type(object_ref).__name__}"
        )
    check_bool("cancel() 'force'", force)
    check_bool("cancel() 'recursive'", recursive)
    runtime().cancel(object_ref, force, recursive)
