"""``@remote``: dispatch on function vs class, bare vs with options."""

from __future__ import annotations

import inspect
from typing import Any

from ember.api.actor import ActorClass
from ember.api.remote_function import RemoteFunction


def _make(target: Any, options: dict[str, Any]) -> Any:
    if inspect.isclass(target):
        return ActorClass(target, options)
    if callable(target):
        return RemoteFunction(target, options)
    raise TypeError(
        "The @ember.remote decorator must be applied to a function or a class, got "
        f"{type(target).__name__}."
    )


def remote(*args: Any, **kwargs: Any) -> Any:
    """Make a function a task or a class an actor.

    Use it bare (``@ember.remote``) or with options
    (``@ember.remote(num_cpus=2, max_retries=1)``).
    """
    if len(args) == 1 and not kwargs and callable(args[0]):
        return _make(args[0], {})
    if args:
        raise TypeError(
            "The @ember.remote decorator takes either a single function or class, or only "
            "keyword arguments (options), e.g. @ember.remote(num_cpus=1)."
        )
    return lambda target: _make(target, dict(kwargs))
