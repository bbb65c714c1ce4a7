"""The ref arguments of tasks we submit, as the submitters see them in our memory store.

Which owned arguments are still pending, waiting for them (one store waiter
per task, not a coroutine), carrying small ready values inside the push, and
where the stored ones live (for locality-aware placement).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ember.runtime.links import Links
from ember.runtime.memory_store import MemoryStore
from ember.runtime.ownership import RefCounter


class TaskArgs:
    """Owned-argument queries for the task and actor submitters (loop thread)."""

    def __init__(self, store: MemoryStore, refs: RefCounter, links: Links) -> None:
        self._store = store
        self._entries = store.entries
        self._refs = refs
        self._links = links

    def pending(self, ref_args: list[Any]) -> list[bytes]:
        """Ids among ``ref_args`` that we own and that are not ready yet."""
        out = []
        entries = self._entries
        for r in ref_args:
            e = entries.get(r.oid)
            if e is not None and not e.ready:
                out.append(r.oid)
        return out

    def when_all_ready(self, oids: list[bytes], cb: Callable[[], Any]) -> None:
        """Call ``cb()`` once every one of ``oids`` is ready (or unknown).

        A failed object is ready too: the worker reports it as the task's error.
        """
        self._store.wait_for(oids, len(oids), cb)

    def inline(self, spec: Any, frames: list[Any]) -> list[Any]:
        """Carry the values of small ready ref arguments we own in the push.

        The worker then needs no round trip back to us for them (as Ray inlines
        small resolved dependencies).  Values holding refs, errors and stored
        values are left for the worker to fetch.
        """
        if not spec.ref_args:
            return frames
        inlined: list[int] = []
        extra: list[Any] = []
        me = self._links.worker_id
        entries = self._entries
        for r in spec.ref_args:
            e = entries.get(r.oid)
            if (
                e is not None
                and e.ready
                and e.data is not None
                and not e.is_error
                and r.owner is not None
                and r.owner.worker_id == me
                and not self._refs.contains_refs(r.oid)
            ):
                extra.append(e.data)
                extra.extend(e.bufs)
                inlined.append(1 + len(e.bufs))
            else:
                inlined.append(-1)
        if not extra:
            spec.inlined = []
            return frames
        spec.inlined = inlined
        return [*frames, *extra]

    def best_node(self, ref_args: list[Any]) -> bytes | None:
        """The node storing most bytes of these arguments, if any is stored."""
        weight: dict[bytes, int] = {}
        entries = self._entries
        for r in ref_args:
            e = entries.get(r.oid)
            if e is not None and e.node_id and e.data is None:
                weight[e.node_id] = weight.get(e.node_id, 0) + e.size
        if not weight:
            return None
        return max(weight, key=weight.__getitem__)
