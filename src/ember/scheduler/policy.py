"""Where a lease request should run: this node, another node, or nowhere (pure).

Strategies (DESIGN.md §6):
- ``DEFAULT``: the node holding most of the task's argument bytes (``locality``)
  if it has the resources free now; else this node if it has them; else another live node
  that has them free now (spill back); else wait here if this node could ever
  hold the request; else any node that could ever hold it; else infeasible.
- ``SPREAD``: rotate over the live nodes that could hold the request.
- ``node_affinity``: that node; if it is dead or can never hold the request, fail
  (hard) or fall back to ``DEFAULT`` (soft).
- ``node_label``: only nodes whose labels satisfy ``hard`` (none: infeasible);
  among them, one with the resources free now that also satisfies ``soft``,
  else any with them free now (this node first), else wait on a node that
  could ever hold the request (this one, a ``soft`` match, any).
A request that was already spilled back is never spilled again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ember.scheduler import labels as label_match
from ember.scheduler.resources import fits


@dataclass(frozen=True)
class NodeView:
    """What the scheduler knows of one node."""

    node_id: bytes
    total: dict[str, float]
    available: dict[str, float]
    alive: bool = True
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Decision:
    """``kind`` is ``local``, ``spill`` (to ``node_id``), ``infeasible`` or ``unschedulable``."""

    kind: str
    node_id: bytes = b""
    reason: str = ""


LOCAL = Decision("local")


def decide(
    request: dict[str, float],
    strategy: dict[str, Any],
    local: bytes,
    nodes: dict[bytes, NodeView],
    spilled: bool,
    rotation: int,
) -> Decision:
    """The placement decision for one lease request arriving at node ``local``."""
    kind = strategy.get("type", "DEFAULT")
    if spilled:
        here = nodes.get(local)
        ok = here is not None and fits(request, here.total)
        if ok and here is not None and kind == "node_label":
            ok = label_match.matches(
                label_match.from_wire(strategy.get("hard")), here.labels
            )
        return LOCAL if ok else Decision("infeasible")
    live = {n: v for n, v in nodes.items() if v.alive}
    if kind == "node_label":
        return _by_labels(request, strategy, local, live)
    if kind == "node_affinity":
        target = bytes.fromhex(strategy["node_id"])
        view = live.get(target)
        if view is not None and fits(request, view.total):
            return LOCAL if target == local else Decision("spill", target)
        if not strategy.get("soft", False):
            why = "is dead or unknown" if view is None else "can never hold the request"
            return Decision(
                "unschedulable",
                target,
                f"node {target.hex()} named by NodeAffinitySchedulingStrategy {why}",
            )
    feasible = sorted(n for n, v in live.items() if fits(request, v.total))
    if not feasible:
        return Decision("infeasible")
    if kind == "SPREAD":
        target = feasible[rotation % len(feasible)]
        return LOCAL if target == local else Decision("spill", target)
    near = strategy.get("locality")
    if near:  # the node holding most of the task's argument bytes, while it has room
        target = bytes.fromhex(near)
        view = live.get(target)
        if view is not None and fits(request, view.available):
            return LOCAL if target == local else Decision("spill", target)
    here = live.get(local)
    if here is not None and fits(request, here.available):
        return LOCAL
    for n in feasible:
        if n != local and fits(request, live[n].available):
            return Decision("spill", n)
    if local in feasible:
        return LOCAL
    return Decision("spill", feasible[0])


def _by_labels(
    request: dict[str, float],
    strategy: dict[str, Any],
    local: bytes,
    live: dict[bytes, NodeView],
) -> Decision:
    hard = label_match.from_wire(strategy.get("hard"))
    soft = label_match.from_wire(strategy.get("soft"))
    feasible = sorted(
        n
        for n, v in live.items()
        if fits(request, v.total) and label_match.matches(hard, v.labels)
    )
    if not feasible:
        return Decision("infeasible")
    preferred = [
        n for n in feasible if soft and label_match.matches(soft, live[n].labels)
    ]
    for group in (preferred, feasible):
        ready = sorted(
            (n for n in group if fits(request, live[n].available)),
            key=lambda n: n != local,
        )
        if ready:
            return LOCAL if ready[0] == local else Decision("spill", ready[0])
    if local in feasible:
        return LOCAL
    target = (preferred or feasible)[0]
    return Decision("spill", target)
