"""Which built resources a node keeps: reference counts and an LRU cap (pure).

A node builds each resource of an env once (an unpacked package, a
virtualenv) and keys it by content. Every worker started with a resource
holds a reference; when a worker exits its references go. Resources nobody
references stay cached for the next job, up to ``cap`` of them per kind;
past the cap the least recently used unreferenced ones are evicted (the
caller deletes their folders). A referenced resource is never evicted.

This object takes events and returns decisions; it does no I/O.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass


@dataclass(frozen=True)
class CacheStats:
    cached: int
    referenced: int
    evicted: int


class EnvCache:
    """Reference counts and last use of the built resources of one kind."""

    def __init__(self, cap: int) -> None:
        if cap < 0:
            raise ValueError(f"cache cap must be >= 0, got {cap}")
        self.cap = cap
        #: key -> reference count, in order of last use (oldest first)
        self._refs: OrderedDict[str, int] = OrderedDict()
        self._evicted = 0

    def __contains__(self, key: str) -> bool:
        return key in self._refs

    def refs(self, key: str) -> int:
        return self._refs.get(key, 0)

    def acquire(self, key: str) -> list[str]:
        """A worker starts with ``key`` (built now or before): the keys to evict."""
        self._refs[key] = self._refs.get(key, 0) + 1
        self._refs.move_to_end(key)
        return self._trim()

    def built(self, key: str) -> list[str]:
        """``key`` was built (unreferenced yet): the keys to evict."""
        if key not in self._refs:
            self._refs[key] = 0
        self._refs.move_to_end(key)
        return self._trim(keep=key)

    def release(self, key: str) -> list[str]:
        """A worker holding ``key`` exited: the keys to evict."""
        n = self._refs.get(key)
        if n is None:
            return []
        self._refs[key] = max(0, n - 1)
        return self._trim()

    def _trim(self, keep: str = "") -> list[str]:
        unused = [k for k, n in self._refs.items() if n == 0 and k != keep]
        over = len(self._refs) - self.cap
        out = unused[: max(0, over)]
        for k in out:
            del self._refs[k]
        self._evicted += len(out)
        return out

    def statistics(self) -> CacheStats:
        return CacheStats(
            cached=len(self._refs),
            referenced=sum(1 for n in self._refs.values() if n),
            evicted=self._evicted,
        )
