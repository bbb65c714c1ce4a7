"""Scheduling strategies for ``.options(scheduling_strategy=...)`` (Ray's names).

Pass one of these, or the strings ``"DEFAULT"`` / ``"SPREAD"``:

- ``NodeAffinitySchedulingStrategy(node_id, soft)``: run on that node (hex id as
  returned by ``get_runtime_context().get_node_id()``); with ``soft=True`` run
  elsewhere if it is dead or can never fit the request, else fail with
  ``TaskUnschedulableError``.
- ``PlacementGroupSchedulingStrategy``: run in a placement group's bundle.
- ``NodeLabelSchedulingStrategy(hard, soft=...)``: run on a node whose labels
  match (operators ``In``, ``NotIn``, ``Exists``, ``DoesNotExist``).
"""

from __future__ import annotations

from typing import Any, Union

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
    """Run in a placement group's bundle (``-1``: any bundle)."""

    def __init__(
        self,
        placement_group: Any,
        placement_group_bundle_index: int = -1,
        placement_group_capture_child_tasks: bool | None = None,
    ) -> None:
        self.placement_group = placement_group
        self.placement_group_bundle_index = placement_group_bundle_index
        self.placement_group_capture_child_tasks = placement_group_capture_child_tasks


def _check_values(values: tuple[Any, ...], operator: str) -> None:
    if not values:
        raise ValueError(
            f"The variadic parameter of the {operator} operator must be a non-empty "
            f'tuple: e.g. {operator}("value1", "value2").'
        )
    for index, value in enumerate(values):
        if not isinstance(value, str):
            raise ValueError(
                f"Type of value in position {index} for the {operator} operator must "
                f'be str (e.g. {operator}("value1", "value2")) but got {value!s} of '
                f"type {type(value)}."
            )


class In:
    """Match nodes that have the label with one of ``values``."""

    def __init__(self, *values: str) -> None:
        _check_values(values, "In")
        self.values = list(values)


class NotIn:
    """Match nodes that lack the label or have it with none of ``values``."""

    def __init__(self, *values: str) -> None:
        _check_values(values, "NotIn")
        self.values = list(values)


class Exists:
    """Match nodes that have the label (any value)."""

    def __init__(self) -> None:
        pass


class DoesNotExist:
    """Match nodes that do not have the label."""

    def __init__(self) -> None:
        pass


class _LabelMatchExpression:
    """One ``key: operator`` entry of a NodeLabelSchedulingStrategy."""

    def __init__(self, key: str, operator: In | NotIn | Exists | DoesNotExist) -> None:
        self.key = key
        self.operator = operator


LabelMatchExpressionsT = dict[str, In | NotIn | Exists | DoesNotExist]


def _expressions(
    raw: LabelMatchExpressionsT | None, param: str
) -> list[_LabelMatchExpression]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise ValueError(
            f'The {param} parameter must be a map (e.g. {{"key1": In("value1")}}) '
            f"but got type {type(raw)}."
        )
    out = []
    for key, value in raw.items():
        if not isinstance(key, str):
            raise ValueError(
                f"The map key of the {param} parameter must be of type str (e.g. "
                f'{{"key1": In("value1")}}) but got {key!s} of type {type(key)}.'
            )
        if not isinstance(value, In | NotIn | Exists | DoesNotExist):
            raise ValueError(
                f"The map value for key {key} of the {param} parameter must be one of "
                'the `In`, `NotIn`, `Exists` or `DoesNotExist` operator (e.g. {"key1": '
                f'In("value1")}}) but got {value!s} of type {type(value)}.'
            )
        out.append(_LabelMatchExpression(key, value))
    return out


class NodeLabelSchedulingStrategy:
    """Run on a node whose labels match ``hard``; prefer ones that also match ``soft``.

    ``scheduling_strategy=NodeLabelSchedulingStrategy({"region": In("us")},
    soft={"disk": Exists()})``. Node labels come from ``ember start --labels``,
    ``init(labels=...)`` or ``Cluster.add_node(labels=...)``; every node also
    carries ``ray.io/node-id``. No live node matching ``hard``: the request is
    infeasible and waits (like one asking for resources no node has).
    """

    def __init__(
        self,
        hard: LabelMatchExpressionsT,
        *,
        soft: LabelMatchExpressionsT | None = None,
    ) -> None:
        self.hard = _expressions(hard, "hard")
        self.soft = _expressions(soft, "soft")
        if not (self.hard or self.soft):
            raise ValueError(
                "The `hard` and `soft` parameter of NodeLabelSchedulingStrategy "
                "cannot both be empty."
            )


#: What ``scheduling_strategy=`` takes (a ``typing.Union``, as Ray's alias is).
SchedulingStrategyT = Union[  # noqa: UP007
    None,
    str,  # "DEFAULT" or "SPREAD"
    PlacementGroupSchedulingStrategy,
    NodeAffinitySchedulingStrategy,
    NodeLabelSchedulingStrategy,
]


__all__ = [
    "DoesNotExist",
    "Exists",
    "In",
    "LabelMatchExpressionsT",
    "NodeAffinitySchedulingStrategy",
    "NodeLabelSchedulingStrategy",
    "NotIn",
    "PlacementGroupSchedulingStrategy",
    "SchedulingStrategyT",
]
