"""Bin-packing resource shapes into nodes: what fits where, and which node type to add.

Pure. A :class:`Bin` is one node's room (its free amounts, or a new node's
totals); a :class:`Shape` is one request (a task's or actor's resources, a
placement-group bundle, a ``request_resources`` bundle). Shapes of one
STRICT_SPREAD placement group share a ``spread`` key and never share a bin.
Packing is first-fit decreasing: the biggest shapes are placed first, each
into the first bin with room, bins in the order given (existing nodes first).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ember.scheduler import resources as res


@dataclass(frozen=True)
class Shape:
    """One resource request to place."""

    resources: Mapping[str, float]
    #: shapes with the same key must go to different bins (STRICT_SPREAD)
    spread: str = ""


@dataclass
class Bin:
    """One node's room. ``node_id`` is empty for a node not started yet."""

    free: dict[str, float]
    node_id: str = ""
    node_type: str = ""
    spread_keys: set[str] = field(default_factory=set)
    taken: list[Shape] = field(default_factory=list)

    def holds(self, shape: Shape) -> bool:
        if shape.spread and shape.spread in self.spread_keys:
            return False
        return res.fits(dict(shape.resources), self.free)

    def take(self, shape: Shape) -> None:
        res.subtract(self.free, dict(shape.resources))
        if shape.spread:
            self.spread_keys.add(shape.spread)
        self.taken.append(shape)


def _size(shape: Shape) -> tuple[float, float, float]:
    r = shape.resources
    return (r.get("GPU", 0.0), r.get("CPU", 0.0), sum(r.values()))


def ordered(shapes: Iterable[Shape]) -> list[Shape]:
    """Biggest first (GPUs, then CPUs, then the sum of all amounts)."""
    return sorted(shapes, key=_size, reverse=True)


def pack(shapes: Iterable[Shape], bins: list[Bin]) -> list[Shape]:
    """Place ``shapes`` into ``bins`` (changing them); return what did not fit."""
    left = []
    for shape in ordered(shapes):
        for b in bins:
            if b.holds(shape):
                b.take(shape)
                break
        else:
            left.append(shape)
    return left


def fits_empty(shape: Shape, totals: Mapping[str, float]) -> bool:
    """Whether a node with ``totals`` could ever hold ``shape``."""
    return res.fits(dict(shape.resources), dict(totals))


def score(totals: Mapping[str, float], shapes: list[Shape]) -> tuple[int, float, int]:
    """How good a new node with ``totals`` is for ``shapes`` (higher is better).

    In order: it wastes no GPU on work that asks for none (GPU nodes are kept
    for GPU work); the mean share of its resources the shapes would use; how
    many shapes it takes.
    """
    b = Bin(dict(totals))
    pack(shapes, [b])
    if not b.taken:
        return (0, 0.0, 0)
    kinds = {k for s in b.taken for k, v in s.resources.items() if v > 0}
    gpu_waste = totals.get("GPU", 0) > 0 and "GPU" not in kinds
    used = [
        1.0 - b.free.get(k, 0.0) / v for k, v in totals.items() if v > 0 and k in kinds
    ]
    share = sum(used) / len(used) if used else 0.0
    return (0 if gpu_waste else 1, share, len(b.taken))
