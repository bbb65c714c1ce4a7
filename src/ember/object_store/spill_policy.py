"""Which objects leave the arena when a node needs room, in what order and batches. Pure.

Theory of operation.  The node daemon asks for room in two cases: the store
passed its high-water mark (``threshold`` of capacity, 0.8 by default, as
Ray's ``object_spilling_threshold``), or a create does not fit.  It lists the
objects that may leave memory (sealed, not deleted, pinned by no reader, not
already being written) as :class:`Candidate` records and asks
:meth:`SpillPolicy.plan` for an :class:`EvictionPlan` that frees ``need``
bytes.  The plan takes, in this order:

1. secondary copies (pulled from another node): dropped, since their primary
   copy lives elsewhere and a reader here pulls them again;
2. objects that already have a copy in a spill file (restored earlier): their
   memory is released at no I/O cost;
3. primary copies, least recently used first, written to spill files in
   batches: a batch is closed at ``batch_bytes`` or ``batch_max_objects``,
   and the last batch is filled up to that size even past ``need``, so many
   small objects share one file instead of one file each (Ray's
   ``min_spilling_size`` / ``max_fused_object_count``);
4. last, and only if ``take_fresh`` (a create that cannot wait for the high
   water to go down), *fresh* objects (made for a reader that has not pinned
   them yet: a copy just pulled, an object just restored), so that the room
   made for a reader is not taken back before it arrives.

:func:`batch_layout` places a batch's objects in its file, each on a page
boundary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from ember.object_store.store import PAGE


@dataclasses.dataclass(frozen=True)
class Candidate:
    """An object that may leave memory."""

    oid: bytes
    #: bytes it takes in the arena
    alloc: int
    #: the store's use counter at its last create or pin
    last_use: int
    #: a copy pulled from another node
    secondary: bool = False
    #: it has a copy in a spill file already
    on_disk: bool = False
    #: made for a reader that has not pinned it yet
    fresh: bool = False


@dataclasses.dataclass(frozen=True)
class EvictionPlan:
    """What to do to free room: drop, release, and write in batches (one file each)."""

    drop: tuple[bytes, ...] = ()
    release: tuple[bytes, ...] = ()
    batches: tuple[tuple[bytes, ...], ...] = ()
    #: the arena bytes the plan frees once every batch is written
    freed_bytes: int = 0

    @property
    def empty(self) -> bool:
        return not (self.drop or self.release or self.batches)


@dataclasses.dataclass(frozen=True)
class SpillPolicy:
    """The spill rules of one node's store."""

    capacity: int
    #: the fraction of capacity above which the daemon spills in the background
    threshold: float = 0.8
    #: a batch (one spill file) is closed once it holds this many bytes
    batch_bytes: int = 16 * 1024 * 1024
    #: ... or this many objects
    batch_max_objects: int = 64

    def __post_init__(self) -> None:
        if not 0.0 < self.threshold <= 1.0:
            raise ValueError(
                f"object_spilling_threshold must be in (0, 1], got {self.threshold}"
            )
        if self.batch_bytes < 1 or self.batch_max_objects < 1:
            raise ValueError("spill batches need a positive size and object count")

    @property
    def high_water(self) -> int:
        return int(self.capacity * self.threshold)

    def over_high_water(self, used: int) -> bool:
        return used > self.high_water

    def need_for_high_water(self, used: int) -> int:
        """Bytes to free to get back under the high-water mark."""
        return max(0, used - self.high_water)

    def need_for_create(self, used: int, alloc: int) -> int:
        """Bytes to free before an extent of ``alloc`` bytes can fit.

        When the free bytes suffice in total but no free extent is large
        enough (fragmentation), freeing ``alloc`` more is the next step.
        """
        over = used + alloc - self.capacity
        return over if over > 0 else alloc

    def plan(
        self, candidates: Iterable[Candidate], need: int, take_fresh: bool = True
    ) -> EvictionPlan:
        """The cheapest way to free at least ``need`` bytes (less if too few candidates)."""
        if need <= 0:
            return EvictionPlan()
        cheap: list[Candidate] = []
        primaries: list[Candidate] = []
        fresh: list[Candidate] = []
        for c in candidates:
            if c.fresh and (c.secondary or c.on_disk):
                fresh.append(c)
            else:
                (cheap if c.secondary or c.on_disk else primaries).append(c)
        cheap.sort(key=lambda c: (not c.secondary, c.last_use))
        primaries.sort(key=lambda c: c.last_use)
        fresh.sort(key=lambda c: c.last_use)
        freed = 0
        drop: list[bytes] = []
        release: list[bytes] = []
        for c in cheap:
            if freed >= need:
                break
            (drop if c.secondary else release).append(c.oid)
            freed += c.alloc
        batches: list[tuple[bytes, ...]] = []
        batch: list[bytes] = []
        batch_bytes = 0
        for c in primaries:
            if freed >= need and not batch:
                break
            batch.append(c.oid)
            batch_bytes += c.alloc
            freed += c.alloc
            if batch_bytes >= self.batch_bytes or len(batch) >= self.batch_max_objects:
                batches.append(tuple(batch))
                batch, batch_bytes = [], 0
        if batch:
            batches.append(tuple(batch))
        for c in fresh if take_fresh else ():
            if freed >= need:
                break
            (drop if c.secondary else release).append(c.oid)
            freed += c.alloc
        return EvictionPlan(tuple(drop), tuple(release), tuple(batches), freed)


def batch_layout(sizes: Iterable[int], align: int = PAGE) -> tuple[list[int], int]:
    """Offsets of objects of ``sizes`` in one spill file (each aligned), and its length."""
    offsets: list[int] = []
    end = 0
    for size in sizes:
        offsets.append(end)
        end += -(-size // align) * align
    return offsets, end
