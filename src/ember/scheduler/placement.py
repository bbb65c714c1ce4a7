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


def place_bundles(
    bundles: list[dict[str, float]], strategy: str, nodes: dict[bytes, NodeView]
) -> list[bytes] | None:
    """A node for each bundle, or None if the group cannot be placed now."""
    live = {n: dict(v.available) for n, v in sorted(nodes.items()) if v.alive}
    if not live or not bundles:
        return None if bundles else []
    if strategy in ("PACK", "STRICT_PACK"):
        need = _sum(bundles)
        for n, avail in sorted(live.items(), key=lambda kv: -kv[1].get("CPU", 0.0)):
            if fits(need, avail):
                return [n] * len(bundles)
        if strategy == "STRICT_PACK":
            return None
        return _greedy(bundles, live, prefer_used=True)
    if strategy in ("SPREAD", "STRICT_SPREAD"):
        out: list[bytes] = []
        used: set[bytes] = set()
        for b in bundles:
            choice = next(
                (n for n, a in live.items() if n not in used and fits(b, a)), None
            )
            if choice is None:
                if strategy == "STRICT_SPREAD":
                    return None
                choice = next((n for n, a in live.items() if fits(b, a)), None)
                if choice is None:
                    return None
            subtract(live[choice], b)
            used.add(choice)
            out.append(choice)
        return out
    raise ValueError(
        f"unknown placement strategy {strategy!r}; use one of {STRATEGIES}"
    )


def _greedy(
    bundles: list[dict[str, float]],
    live: dict[bytes, dict[str, float]],
    prefer_used: bool,
) -> list[bytes] | None:
    out: list[bytes] = []
    for b in bundles:
        order = sorted(
            live, key=lambda n: (n not in out) if prefer_used else (n in out)
        )
        choice = next((n for n in order if fits(b, live[n])), None)
        if choice is None:
            return None
        subtract(live[choice], b)
        out.append(choice)
    return out


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
