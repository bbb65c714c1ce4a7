"""Counting this process's actor handles, to kill an actor with its last handle.

Ray's rule: a non-detached actor, named or not, is destroyed once its
creator's handles (and the copies made of them) are gone; handles from
``get_actor`` do not keep it alive (Ray 2.60: a named actor dies with its
creator's last handle even while ``get_actor`` handles to it exist, and its
name is free again).  We see only the handles in this process; so an actor
created here is collected when its count of counted handles drops to zero
*and* no counted handle was ever pickled (passed to a task, an actor or stored
in an object).  Otherwise it lives until it is killed or its job ends (Ray
would collect it once those copies are gone too).  Detached actors are never
collected.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class ActorHandleCounts:
    """Live handle counts per actor id, and which actors may be collected."""

    def __init__(self, on_collect: Callable[[bytes], None]) -> None:
        self._lock = threading.Lock()
        self._counts: dict[bytes, int] = {}
        self._collectable: set[bytes] = set()
        self._on_collect = on_collect

    def add(self, actor_id: bytes) -> None:
        with self._lock:
            self._counts[actor_id] = self._counts.get(actor_id, 0) + 1

    def mark_collectable(self, actor_id: bytes) -> None:
        with self._lock:
            self._collectable.add(actor_id)

    def escaped(self, actor_id: bytes) -> None:
        with self._lock:
            self._collectable.discard(actor_id)

    def remove(self, actor_id: bytes) -> None:
        with self._lock:
            n = self._counts.get(actor_id, 0) - 1
            if n > 0:
                self._counts[actor_id] = n
                return
            self._counts.pop(actor_id, None)
            if actor_id not in self._collectable:
                return
            self._collectable.discard(actor_id)
        self._on_collect(actor_id)

    def live(self) -> list[bytes]:
        """The actors this process holds handles to now."""
        with self._lock:
            return list(self._counts)
