"""as_completed and map_unordered: consume task results in completion order."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import ember


def _check(chunk_size: int, kwargs: dict[str, Any]) -> None:
    if chunk_size < 1:
        raise ValueError("`chunk_size` must be >= 1")
    if "num_returns" in kwargs:
        raise ValueError("Use the `chunk_size` argument instead of `num_returns`.")


def _next_batch(
    refs: list[Any], chunk_size: int, yield_obj_refs: bool, kwargs: dict[str, Any]
) -> tuple[list[Any], list[Any]]:
    ready, rest = ember.wait(refs, num_returns=min(chunk_size, len(refs)), **kwargs)
    return (ready if yield_obj_refs else ember.get(ready)), rest


def as_completed(
    refs: Sequence[Any],
    *,
    chunk_size: int = 10,
    yield_obj_refs: bool = False,
    **kwargs: Any,
) -> Iterator[Any]:
    """Yield the values of ``refs`` (or the refs) as their tasks finish.

    Each step waits for up to ``chunk_size`` more; extra keyword arguments
    (``timeout``, ``fetch_local``) go to :func:`ember.wait`. With a ``timeout``,
    a step that finds nothing ready yields nothing and tries again.
    """
    _check(chunk_size, kwargs)
    pending = list(refs)
    while pending:
        done, pending = _next_batch(pending, chunk_size, yield_obj_refs, kwargs)
        yield from done


def map_unordered(
    fn: Any,
    items: Iterable[Any],
    *,
    backpressure_size: int | None = 100,
    chunk_size: int = 10,
    yield_obj_refs: bool = False,
    **kwargs: Any,
) -> Iterator[Any]:
    """Run the remote function ``fn`` on each item; yield results as they finish.

    At most ``backpressure_size`` calls are in flight (None: no limit).
    """
    if backpressure_size is not None and backpressure_size <= 0:
        raise ValueError("backpressure_size must be positive.")
    _check(chunk_size, kwargs)
    limit = float("inf") if backpressure_size is None else backpressure_size
    pending: list[Any] = []
    for item in items:
        pending.append(fn.remote(item))
        if len(pending) >= limit:
            done, pending = _next_batch(pending, chunk_size, yield_obj_refs, kwargs)
            yield from done
    yield from as_completed(
        pending, chunk_size=chunk_size, yield_obj_refs=yield_obj_refs, **kwargs
    )
