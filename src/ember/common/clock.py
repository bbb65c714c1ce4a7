"""Clocks: the monotonic time source that deadlines are measured against.

Pure cores take a :class:`Clock` instead of calling ``time.monotonic`` so that
their tests can move time by hand (:class:`FakeClock`) without sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    """A monotonic clock, in seconds."""

    def now(self) -> float: ...


class MonotonicClock:
    """``time.monotonic`` (the same clock as asyncio's default loop time)."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()


class FakeClock:
    """A clock that moves only when told to (tests)."""

    __slots__ = ("t",)

    def __init__(self, start: float = 0.0) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds
