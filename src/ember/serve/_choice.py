"""The router's pure core: power-of-two-choices over replicas by their ongoing requests.

No I/O and no clock: the async shell (``_router.py``) calls :meth:`ReplicaChooser.choose`
when a request needs a replica and :meth:`done` when its reply arrives.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

__all__ = ["ReplicaChooser"]


class ReplicaChooser:
    """Which replica gets the next request, and how many requests each one is running."""

    def __init__(self, max_ongoing: int = 5, rng: random.Random | None = None) -> None:
        self.max_ongoing = max_ongoing
        self.ongoing: dict[str, int] = {}
        self._rng = rng or random.Random()

    def set_replicas(self, replica_ids: Iterable[str], max_ongoing: int) -> None:
        """Replace the replica set; counts of replicas that stay are kept."""
        ids = list(replica_ids)
        self.max_ongoing = max_ongoing
        self.ongoing = {rid: self.ongoing.get(rid, 0) for rid in ids}

    def remove(self, replica_id: str) -> None:
        self.ongoing.pop(replica_id, None)

    def choose(self, prefer: Iterable[str] = ()) -> str | None:
        """Pick the less loaded of two random replicas with room; None when all are full.

        Replicas in ``prefer`` (those holding the request's multiplexed model) go first
        when one of them has room."""
        free = [r for r, n in self.ongoing.items() if n < self.max_ongoing]
        if not free:
            return None
        preferred = set(prefer)
        if preferred:
            free = [r for r in free if r in preferred] or free
        if len(free) == 1:
            pick = free[0]
        else:
            a, b = self._rng.sample(free, 2)
            pick = a if self.ongoing[a] <= self.ongoing[b] else b
        self.ongoing[pick] += 1
        return pick

    def done(self, replica_id: str) -> None:
        if self.ongoing.get(replica_id, 0) > 0:
            self.ongoing[replica_id] -= 1

    def total_ongoing(self) -> int:
        return sum(self.ongoing.values())
