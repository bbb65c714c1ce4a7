"""DynamicObjectRefGenerator: the refs of a ``num_returns="dynamic"`` task's values.

A task run with ``num_returns="dynamic"`` returns one ObjectRef whose value is
one of these: an iterable of the refs of the values the task yielded, in order.
It pickles with its refs (borrowing is tracked by ``ObjectRef.__reduce__``).
Iteration consumes it, as in Ray; ``len()`` is the number not yet taken.
"""

from __future__ import annotations

import collections
from collections.abc import Iterable, Iterator
from typing import Any


class DynamicObjectRefGenerator:
    """The ObjectRefs a dynamic-returns task produced, in yield order."""

    def __init__(self, refs: Iterable[Any]) -> None:
        self._refs: collections.deque[Any] = collections.deque(refs)

    def __iter__(self) -> Iterator[Any]:
        while self._refs:
            yield self._refs.popleft()

    def __len__(self) -> int:
        return len(self._refs)

    def __repr__(self) -> str:
        return f"DynamicObjectRefGenerator({list(self._refs)!r})"
