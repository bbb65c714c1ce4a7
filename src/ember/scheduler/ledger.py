"""One node's resource ledger: totals, availability, leases, bundles, GPU ids (pure).

Every change is a method; nothing else edits the amounts.  Amounts are kept
in fixed point (``resources.SCALE`` units), so tenths add up exactly.

Theory of operation::

    acquire(request) -> Lease        available -= request; GPU ids assigned
    lend(lease) / unlend(lease)      a blocked worker's CPU goes back to the
                                     pool / is taken back (may oversubscribe)
    release(lease)                   available += what the lease still holds
    prepare(pg, bundles) -> bool     reserve the bundles (all or none)
    commit(pg)                       the bundles appear as resources of their own
                                     (``CPU_group_<i>_<pg>``, ...), in totals too
    return_bundles(pg)               those vanish (also from the leases that drew
                                     on them); the reservation comes back

Invariants (checked by tests/unit/test_ledger.py): for every resource,
``available + held by leases + reserved by bundles == totals``; no lease or
reservation holds a negative amount; ``available`` drops below zero only when
an unblocked worker takes back the CPU it lent; a bundle's resources exist
only between commit and return; a whole GPU id is held by one lease at a
time, and the shares of a fractional one add up to at most 1.

GPU ids: ``GPU`` totals of ``g`` give ids ``0..ceil(g)-1``, each of capacity
1 (the last one the fraction left).  A request of ``n + f`` GPUs takes ``n``
wholly free ids and, for ``f > 0``, a share ``f`` of the first other id with
room (Ray's first fit), so fractional leases share an id.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import MappingProxyType

from ember.scheduler.placement import bundle_resource_names
from ember.scheduler.resources import SCALE, describe, quantized

#: The resource a blocked worker lends out.
LENDABLE = "CPU"


class ResourcesUnavailable(Exception):
    """``acquire`` or ``prepare`` asked for more than is available now."""

    def __init__(self, request: dict[str, float], available: dict[str, float]) -> None:
        super().__init__(request, available)
        self.request = request
        self.available = available

    def __str__(self) -> str:
        return (
            f"cannot take {{{describe(self.request)}}} out of the available "
            f"{{{describe(self.available)}}}"
        )


@dataclasses.dataclass(frozen=True)
class Lease:
    """What ``acquire`` granted."""

    lease_id: int
    resources: Mapping[str, float]
    gpu_ids: tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class LedgerStatistics:
    """A snapshot of the ledger (amounts as floats)."""

    totals: Mapping[str, float]
    available: Mapping[str, float]
    #: held by leases, net of what their blocked workers lent out
    held: Mapping[str, float]
    lent: Mapping[str, float]
    #: reserved by prepared bundles (committed or not)
    reserved: Mapping[str, float]
    leases: int
    prepared_groups: int
    committed_groups: int
    #: GPU ids no lease holds any share of
    free_gpu_ids: tuple[int, ...]


class _Held:
    """One lease's charges (fixed point)."""

    __slots__ = ("amounts", "gpus", "lent")

    def __init__(self, amounts: dict[str, int], gpus: dict[int, int]) -> None:
        self.amounts = amounts
        #: GPU id -> the share of it this lease holds
        self.gpus = gpus
        self.lent: dict[str, int] = {}


class _Group:
    """A placement group's bundles on this node (fixed point)."""

    __slots__ = ("added", "bundles", "reserved")

    def __init__(self, bundles: list[tuple[int, dict[str, float]]]) -> None:
        self.bundles = bundles
        self.reserved: dict[str, int] = {}
        for _, b in bundles:
            _add(self.reserved, quantized(b))
        #: the bundle resources added by commit; None until then
        self.added: dict[str, int] | None = None


def _add(into: dict[str, int], amounts: Mapping[str, int]) -> None:
    for k, v in amounts.items():
        into[k] = into.get(k, 0) + v


def _sub(into: dict[str, int], amounts: Mapping[str, int]) -> None:
    for k, v in amounts.items():
        into[k] = into.get(k, 0) - v


def _floats(amounts: Mapping[str, int]) -> dict[str, float]:
    return {k: v / SCALE for k, v in amounts.items()}


class ResourceLedger:
    """The resources of one node and who holds them."""

    def __init__(self, totals: Mapping[str, float]) -> None:
        self._total: dict[str, int] = {k: round(v * SCALE) for k, v in totals.items()}
        self._avail = dict(self._total)
        gpu = max(0, self._total.get("GPU", 0))
        #: free share of each GPU id
        self._gpu_free = [min(SCALE, gpu - i * SCALE) for i in range(-(-gpu // SCALE))]
        self._gpu_capacity = list(self._gpu_free)
        self._leases: dict[int, _Held] = {}
        self._groups: dict[bytes, _Group] = {}
        self._next_lease = 1

    # -- queries ------------------------------------------------------------------------
    def totals(self) -> dict[str, float]:
        return _floats(self._total)

    def available(self) -> dict[str, float]:
        return _floats(self._avail)

    def fits(self, request: dict[str, float]) -> bool:
        """Whether ``acquire(request)`` would succeed now."""
        need = quantized(request)
        if any(self._avail.get(k, 0) < v for k, v in need.items()):
            return False
        return self._pick_gpus(need.get("GPU", 0)) is not None

    def holds(self, lease_id: int) -> bool:
        return lease_id in self._leases

    def held(self, lease_id: int) -> dict[str, float]:
        """What the lease holds now (its request, less what vanished with a bundle)."""
        h = self._leases.get(lease_id)
        return _floats(h.amounts) if h is not None else {}

    def is_lent(self, lease_id: int) -> bool:
        h = self._leases.get(lease_id)
        return bool(h is not None and h.lent)

    # -- leases -------------------------------------------------------------------------
    def acquire(self, request: dict[str, float]) -> Lease:
        """Take ``request`` out of the available resources for a new lease."""
        need = quantized(request)
        gpus = self._pick_gpus(need.get("GPU", 0))
        if gpus is None or any(self._avail.get(k, 0) < v for k, v in need.items()):
            raise ResourcesUnavailable(dict(request), self.available())
        _sub(self._avail, need)
        for i, share in gpus.items():
            self._gpu_free[i] -= share
        lease_id = self._next_lease
        self._next_lease += 1
        self._leases[lease_id] = _Held(need, gpus)
        return Lease(lease_id, MappingProxyType(_floats(need)), tuple(sorted(gpus)))

    def release(self, lease_id: int) -> bool:
        """End a lease: what it still holds is available again.  False if unknown."""
        h = self._leases.pop(lease_id, None)
        if h is None:
            return False
        for k, v in h.amounts.items():
            self._avail[k] += v - h.lent.get(k, 0)
        for i, share in h.gpus.items():
            self._gpu_free[i] += share
        return True

    def lend(self, lease_id: int) -> bool:
        """The lease's worker blocks: its CPU is available to others meanwhile."""
        h = self._leases.get(lease_id)
        if h is None or h.lent or h.amounts.get(LENDABLE, 0) <= 0:
            return False
        h.lent = {LENDABLE: h.amounts[LENDABLE]}
        _add(self._avail, h.lent)
        return True

    def unlend(self, lease_id: int) -> bool:
        """The worker runs again and takes its CPU back, even if that oversubscribes."""
        h = self._leases.get(lease_id)
        if h is None or not h.lent:
            return False
        _sub(self._avail, h.lent)
        h.lent = {}
        return True

    def _pick_gpus(self, need: int) -> dict[int, int] | None:
        """GPU id -> share for a request of ``need`` (fixed point), or None if no room."""
        if need <= 0:
            return {}
        whole, frac = divmod(need, SCALE)
        free = self._gpu_free
        picked = [i for i, f in enumerate(free) if f == SCALE][:whole]
        if len(picked) < whole:
            return None
        out = dict.fromkeys(picked, SCALE)
        if frac:
            i = next((i for i, f in enumerate(free) if f >= frac and i not in out), -1)
            if i < 0:
                return None
            out[i] = frac
        return out

    # -- placement group bundles --------------------------------------------------------
    def prepare(
        self, pg_id: bytes, bundles: list[tuple[int, dict[str, float]]]
    ) -> bool:
        """Reserve all ``(index, resources)`` bundles of a group, or none (False)."""
        if pg_id in self._groups:
            return True
        g = _Group(list(bundles))
        if any(self._avail.get(k, 0) < v for k, v in g.reserved.items()):
            return False
        _sub(self._avail, g.reserved)
        self._groups[pg_id] = g
        return True

    def commit(self, pg_id: bytes) -> bool:
        """Expose a prepared group's bundles as resources.  False if not prepared or done."""
        g = self._groups.get(pg_id)
        if g is None or g.added is not None:
            return False
        added: dict[str, int] = {}
        for index, b in g.bundles:
            _add(added, quantized(bundle_resource_names(pg_id.hex(), index, b)))
        g.added = added
        _add(self._total, added)
        _add(self._avail, added)
        return True

    def return_bundles(self, pg_id: bytes) -> list[int]:
        """Drop a group's bundles; the ids of the leases that were drawing on them."""
        g = self._groups.pop(pg_id, None)
        if g is None:
            return []
        affected: list[int] = []
        if g.added is not None:
            for k in g.added:
                self._total.pop(k, None)
                self._avail.pop(k, None)
            for lease_id, h in self._leases.items():
                if any(k in h.amounts for k in g.added):
                    affected.append(lease_id)
                    for k in g.added:
                        h.amounts.pop(k, None)
                        h.lent.pop(k, None)
        _add(self._avail, g.reserved)
        return affected

    def groups(self) -> list[bytes]:
        return list(self._groups)

    # -- observability ------------------------------------------------------------------
    def statistics(self) -> LedgerStatistics:
        held: dict[str, int] = {}
        lent: dict[str, int] = {}
        for h in self._leases.values():
            _add(held, h.amounts)
            _sub(held, h.lent)
            _add(lent, h.lent)
        reserved: dict[str, int] = {}
        for g in self._groups.values():
            _add(reserved, g.reserved)
        return LedgerStatistics(
            totals=MappingProxyType(self.totals()),
            available=MappingProxyType(self.available()),
            held=MappingProxyType(_floats(held)),
            lent=MappingProxyType(_floats(lent)),
            reserved=MappingProxyType(_floats(reserved)),
            leases=len(self._leases),
            prepared_groups=len(self._groups),
            committed_groups=sum(
                1 for g in self._groups.values() if g.added is not None
            ),
            free_gpu_ids=tuple(
                i
                for i, (f, c) in enumerate(
                    zip(self._gpu_free, self._gpu_capacity, strict=True)
                )
                if f == c
            ),
        )

    def gpu_shares(self) -> list[int]:
        """Each GPU id's free share, fixed point (for tests and debugging)."""
        return list(self._gpu_free)
