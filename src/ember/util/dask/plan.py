"""The plan of a Dask graph: which node to submit when, and when a result may be let go.

Pure: no ember calls. :func:`graph_of` turns what Dask hands a scheduler (a
mapping, a ``HighLevelGraph`` or an expression) into Dask's task-spec form;
:func:`make_plan` orders the nodes with ``dask.order`` (a topological order
that keeps memory low) and, for each step, lists the keys whose last dependent
that step is, so the caller can drop its handle on them as soon as it has
submitted the step.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, cast

from dask._task_spec import DataNode, GraphNode, Task, convert_legacy_graph
from dask.core import flatten
from dask.order import order


class DaskGraphError(ValueError):
    """The graph handed to the scheduler cannot run (a missing key, or a cycle)."""


def graph_of(dsk: Any) -> dict[Hashable, GraphNode]:
    """``dsk`` as a plain dict of task-spec nodes (``Task``, ``Alias``, ``DataNode``)."""
    if not isinstance(dsk, Mapping):
        # An expression (dask >= 2025): its graph, lowered and optimized.
        dsk = dsk.__dask_graph__()
    return dict(convert_legacy_graph(dsk))


@dataclass(frozen=True)
class Step:
    """Submit ``node`` (under ``key``); after that, ``release`` are needed no more."""

    key: Hashable
    node: GraphNode
    release: tuple[Hashable, ...]


def output_keys(keys: Any) -> set[Hashable]:
    """The flat set of keys in Dask's (possibly nested) list of wanted keys."""
    if isinstance(keys, list):
        return set(flatten(keys))
    return {keys}


def make_plan(graph: Mapping[Hashable, GraphNode], keys: Any) -> list[Step]:
    """The steps that compute ``keys``: only the nodes they need, in ``dask.order``.

    Raises:
        DaskGraphError: a wanted key or a dependency is not in the graph.
    """
    wanted = output_keys(keys)
    needed = _needed(graph, wanted)
    sub = {k: graph[k] for k in needed}
    priority: dict[Any, int] = order(cast(Mapping[Any, Any], sub)) if sub else {}
    ordered = sorted(sub, key=lambda k: priority[k])
    dependents: dict[Hashable, int] = dict.fromkeys(sub, 0)
    for k in ordered:
        for dep in sub[k].dependencies:
            dependents[dep] += 1
    steps = []
    for k in ordered:
        release = []
        for dep in sub[k].dependencies:
            dependents[dep] -= 1
            if dependents[dep] == 0 and dep not in wanted:
                release.append(dep)
        steps.append(Step(k, sub[k], tuple(release)))
    return steps


def _needed(
    graph: Mapping[Hashable, GraphNode], wanted: set[Hashable]
) -> set[Hashable]:
    needed: set[Hashable] = set()
    stack = list(wanted)
    while stack:
        k = stack.pop()
        if k in needed:
            continue
        if k not in graph:
            raise DaskGraphError(f"the Dask graph has no task for key {k!r}")
        needed.add(k)
        stack.extend(graph[k].dependencies)
    return needed


def nested_refs(node: GraphNode, is_ref: Callable[[Any], bool]) -> list[Any]:
    """The refs held as data inside ``node`` (a persisted result inlined into a task).

    In the order :func:`replace_nested` visits them, so a worker can put the
    resolved values back in the same places.
    """
    return [dn.value for dn in _data_nodes(node) if is_ref(dn.value)]


def replace_nested(
    node: GraphNode, is_ref: Callable[[Any], bool], values: Iterator[Any]
) -> GraphNode:
    """``node`` with each ref-holding data node's value taken from ``values`` (in place)."""
    if isinstance(node, DataNode):
        return DataNode(node.key, next(values)) if is_ref(node.value) else node
    _rewrite(node, is_ref, values)
    return node


def _data_nodes(obj: Any) -> Iterator[DataNode]:
    if isinstance(obj, DataNode):
        yield obj
    elif isinstance(obj, Task):
        for a in (*obj.args, *obj.kwargs.values()):
            yield from _data_nodes(a)
    elif type(obj) in (list, tuple):
        for a in obj:
            yield from _data_nodes(a)
    elif isinstance(obj, dict):
        for a in obj.values():
            yield from _data_nodes(a)


def _rewrite(obj: Any, is_ref: Callable[[Any], bool], values: Iterator[Any]) -> Any:
    """Same traversal as :func:`_data_nodes`; returns ``obj`` with refs swapped."""
    if isinstance(obj, DataNode):
        return DataNode(obj.key, next(values)) if is_ref(obj.value) else obj
    if isinstance(obj, Task):
        obj.args = tuple(_rewrite(a, is_ref, values) for a in obj.args)
        obj.kwargs = {k: _rewrite(v, is_ref, values) for k, v in obj.kwargs.items()}
        return obj
    if type(obj) in (list, tuple):
        return type(obj)(_rewrite(a, is_ref, values) for a in obj)
    if isinstance(obj, dict):
        return {k: _rewrite(v, is_ref, values) for k, v in obj.items()}
    return obj
