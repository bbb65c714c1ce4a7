"""Compute strategies (tasks or an actor pool) and the parsing of map options into them."""

from __future__ import annotations

from typing import Any

from ember.data._plan import ActorPoolSpec


class ComputeStrategy:
    """Base of the strategies a map operator runs with."""


class TaskPoolStrategy(ComputeStrategy):
    """Run the function as tasks; ``size`` caps how many run at once."""

    def __init__(self, size: int | None = None) -> None:
        if size is not None and size < 1:
            raise ValueError(f"`size` must be >= 1, got {size}")
        self.size = size


class ActorPoolStrategy(ComputeStrategy):
    """Run a callable class on an autoscaling pool of actors (min_size..max_size)."""

    def __init__(
        self,
        *,
        size: int | None = None,
        min_size: int | None = None,
        max_size: int | None = None,
        initial_size: int | None = None,
        max_tasks_in_flight_per_actor: int | None = None,
    ) -> None:
        if size is not None:
            if size < 1:
                raise ValueError(f"size must be >= 1, got {size}")
            if min_size is not None or max_size is not None:
                raise ValueError(
                    "min_size and max_size cannot be set together with size"
                )
            min_size = max_size = size
        min_size = 1 if min_size is None else min_size
        if min_size < 1:
            raise ValueError(f"min_size must be >= 1, got {min_size}")
        if max_size is not None and max_size < min_size:
            raise ValueError(f"min_size ({min_size}) must be <= max_size ({max_size})")
        self.min_size = min_size
        self.max_size = max_size
        self.initial_size = initial_size
        self.max_tasks_in_flight_per_actor = max_tasks_in_flight_per_actor

    def __repr__(self) -> str:
        return f"ActorPoolStrategy(min_size={self.min_size}, max_size={self.max_size})"


def resolve_compute(
    fn: Any,
    compute: Any,
    concurrency: Any,
    has_constructor_args: bool,
    default_max: int,
) -> tuple[ActorPoolSpec | None, int | None]:
    """(actor pool, task pool size) for a map operator, with Ray's rules and errors."""
    is_class = isinstance(fn, type)
    if not is_class and has_constructor_args:
        raise ValueError(
            "``fn_constructor_args`` can only be specified if providing a callable class "
            f"instance for ``fn``, but got: {fn}."
        )
    if compute is not None:
        if compute == "tasks":
            compute = TaskPoolStrategy()
        elif compute == "actors":
            compute = ActorPoolStrategy()
        if is_class and isinstance(compute, TaskPoolStrategy):
            raise ValueError(
                f"You specified the callable class {fn} as your UDF with the compute "
                f"{compute}, but callable classes run on an actor pool: pass an "
                "ActorPoolStrategy (or concurrency=n) instead."
            )
        if not is_class and isinstance(compute, ActorPoolStrategy):
            raise ValueError(
                f"You specified the function {fn} as your UDF with the compute {compute}, "
                "but plain functions run as tasks: pass a TaskPoolStrategy or None."
            )
        if isinstance(compute, ActorPoolStrategy):
            return ActorPoolSpec(
                compute.min_size, compute.max_size or max(compute.min_size, default_max)
            ), None
        if isinstance(compute, TaskPoolStrategy):
            return None, compute.size
        raise ValueError(
            f"compute must be 'tasks', 'actors' or a ComputeStrategy, got {compute!r}"
        )
    if concurrency is not None:
        if isinstance(concurrency, tuple):
            if len(concurrency) not in (2, 3) or not all(
                isinstance(c, int) for c in concurrency
            ):
                raise ValueError(
                    f"``concurrency`` is expected to be set as a tuple of integers, but got: {concurrency}."
                )
            if not is_class:
                raise ValueError(
                    "``concurrency`` is set as a tuple of integers, but ``fn`` is not a "
                    f"callable class: {fn}. Use ``concurrency=n`` to control maximum number "
                    "of workers to use."
                )
            strategy = ActorPoolStrategy(
                min_size=concurrency[0], max_size=concurrency[1]
            )
            return ActorPoolSpec(
                strategy.min_size, strategy.max_size or default_max
            ), None
        if isinstance(concurrency, int) and not isinstance(concurrency, bool):
            if is_class:
                return ActorPoolSpec(concurrency, concurrency), None
            return None, TaskPoolStrategy(concurrency).size
        raise ValueError(
            "``concurrency`` is expected to be set as an integer or a tuple of integers, "
            f"but got: {concurrency}."
        )
    if is_class:
        return ActorPoolSpec(1, max(1, default_max)), None
    return None, None
