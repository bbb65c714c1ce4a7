"""Placing a placement group's bundles on nodes (pure).

Strategies, as in Ray:
- ``PACK``: as few nodes as possible (one if it fits), else spread over more.
- ``STRICT_PACK``: all bundles on one node, or not at all.
- ``SPREAD``: a different node for each bundle where possible.
- ``STRICT_SPREAD``: a different node for each bundle, or not at all.
Placement looks at *available* resources; the node daemons' prepare step is
authoritative (a stale view just makes the prepare fail and the group retry).
"""

from __future__ import annotations

from ember.scheduler.policy import NodeView
from ember.scheduler.resources import add, fits, subtract

STRATEGIES = ("PACK", "SPREAD", "STRICT_PACK", "STRICT_SPREAD")


def _sum(bundles: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for b in bundles:
        add(total, b)
    return total


def _largest_first(bundles: list[dict[str, float]]) -> list[int]:
    """Bundle indexes, the largest first (GPUs, then CPUs, then the rest), as Ray does.

    Placing big bundles first finds placements a first fit in the given order
    misses (``[{CPU: 1}, {CPU: 2}]`` on nodes of 2 and 1 CPUs, STRICT_SPREAD).
    """

    def size(i: int) -> tuple[float, float, float]:
        b = bundles[i]
        rest = sum(v for k, v in b.items() if k not in ("GPU", "CPU") and v > 0)
        return (-b.get("GPU", 0.0), -b.get("CPU", 0.0), -rest)

    return sorted(range(len(bundles)), key=size)


def place_bundles(
    bundles: list[dict[str, float]], strategy: str, nodes: dict[bytes, NodeView]
) -> list[bytes] | None:
    """A node for each bundle, or None if the group cannot be placed now."""
    if strategy not in STRATEGIES:
        raise ValueError(
            f"unknown placement strategy {strategy!r}; use one of {STRATEGIES}"
        )
    if not bundles:
        return []
    live = {n: dict(v.available) for n, v in sorted(nodes.items()) if v.alive}

    def roomiest(n: bytes) -> float:
        return -live[n].get("CPU", 0.0)

    if strategy in ("PACK", "STRICT_PACK"):
        need = _sum(bundles)
        for n in sorted(live, key=roomiest):
            if fits(need, live[n]):
                return [n] * len(bundles)
        if strategy == "STRICT_PACK":
            return None
    out: dict[int, bytes] = {}
    for i in _largest_first(bundles):
        b = bundles[i]
        used = list(out.values())
        room = [n for n in sorted(live, key=roomiest) if fits(b, live[n])]
        if strategy == "PACK":  # as few nodes as possible: the ones in use first
            room.sort(key=lambda n: n not in used)
        else:  # a node not in use yet; SPREAD may reuse the least used one
            fresh = [n for n in room if n not in used]
            if fresh or strategy == "STRICT_SPREAD":
                room = fresh
            else:
                room.sort(key=used.count)
        if not room:
            return None
        subtract(live[room[0]], b)
        out[i] = room[0]
    return [out[i] for i in range(len(bundles))]


def feasible_ever(
    bundles: list[dict[str, float]], strategy: str, nodes: dict[bytes, NodeView]
) -> bool:
    """Whether the group could be placed on these nodes if they were idle."""
    idle = {n: NodeView(n, v.total, dict(v.total), v.alive) for n, v in nodes.items()}
    return place_bundles(bundles, strategy, idle) is not None


def bundle_resource_names(
    pg_hex: str, index: int, resources: dict[str, float]
) -> dict[str, float]:
    """The resources a committed bundle adds to its node (Ray's naming)."""
    out: dict[str, float] = {}
    for k, v in resources.items():
        out[f"{k}_group_{index}_{pg_hex}"] = v
        out[f"{k}_group_{pg_hex}"] = v
    out[f"bundle_group_{index}_{pg_hex}"] = 1000.0
    out[f"bundle_group_{pg_hex}"] = 1000.0
    return out


def request_in_bundle(
    pg_hex: str, index: int, request: dict[str, float]
) -> dict[str, float]:
    """A task's or actor's request rewritten to draw on a placement group's bundle.

    As in Ray, it always draws on the group-wide resources (``CPU_group_<pg>``)
    and, with an index, on that bundle's (``CPU_group_<i>_<pg>``) too: so tasks
    with and without an index never use more than the group reserved.
    """
    suffixes = [pg_hex] if index < 0 else [pg_hex, f"{index}_{pg_hex}"]
    out: dict[str, float] = {}
    for suffix in suffixes:
        out.update({f"{k}_group_{suffix}": v for k, v in request.items() if v > 0})
        out[f"bundle_group_{suffix}"] = 0.001
    return out
