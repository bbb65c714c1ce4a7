"""Scheduling strategies for ``.options(scheduling_strategy=...)`` (Ray's names).

Pass one of these, or the strings ``"DEFAULT"`` / ``"SPREAD"``:

- ``NodeAffinitySchedulingStrategy(node_id, soft)``: run on that node (hex id as
  returned by ``get_runtime_context().get_node_id()``); with ``soft=True`` run
  elsewhere if it is dead or can never fit the request, else fail with
  ``TaskUnschedulableError``.
- ``PlacementGroupSchedulingStrategy``: accepted by the option validator, but
  placement groups are not implemented yet: submitting with it raises
  ``NotImplementedError``.
"""

from __future__ import annotations

from typing import Any

from ember.common.ids import NodeID


def _invalid_node(node_id: str) -> str:
    return (
        f"Invalid node_id '{node_id}'. Node ID must be a valid hex string; "
        "ember.nodes() lists every node and its 'NodeID'."
    )


class NodeAffinitySchedulingStrategy:
    """Run on a given node.

    Args:
        node_id: the node's hex id.
        soft: if True, fall back to another node when this one is dead or too small.
    """

    def __init__(
        self,
        node_id: str,
        soft: bool,
        _spill_on_unavailable: bool = False,
        _fail_on_unavailable: bool = False,
    ) -> None:
        if not isinstance(node_id, str):
            node_id = node_id.hex()  # a NodeID, as Ray accepts
        try:
            parsed = NodeID.from_hex(node_id)
        except ValueError as exc:
            raise ValueError(_invalid_node(node_id)) from exc
        if parsed.is_nil():
            raise ValueError(_invalid_node(node_id))
        self.node_id = node_id
        self.soft = soft
        self._spill_on_unavailable = _spill_on_unavailable
        self._fail_on_unavailable = _fail_on_unavailable

    def __repr__(self) -> str:
        return f"NodeAffinitySchedulingStrategy(node_id={self.node_id!r}, soft={self.soft})"


class PlacementGroupSchedulingStrategy:
    """Run in a placement group's bundle (placement groups are not implemented yet)."""

    def __init__(
        self,
        placement_group: Any,
        placement_group_bundle_index: int = -1,
        placement_group_capture_child_tasks: bool | None = None,
    ) -> None:
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


class NodeLabelSchedulingStrategy:
    """Run on nodes whose labels match (not implemented yet)."""

    def __init__(
        self, hard: dict[str, Any], *, soft: dict[str, Any] | None = None
    ) -> None:
        self.hard = hard
        self.soft = soft or {}


__all__ = [
    "NodeAffinitySchedulingStrategy",
    "NodeLabelSchedulingStrategy",
    "PlacementGroupSchedulingStrategy",
]
