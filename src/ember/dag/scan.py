"""Find and replace DAG nodes nested in arguments (lists, tuples, dicts, sets)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: containers searched for nested nodes (exact types); other objects pass through as
#: they are, so a node inside an object of a user class is not found (Ray finds it)
_SEQUENCES = (list, tuple, set, frozenset)


def replace_nodes(
    value: Any, is_node: Callable[[Any], bool], fn: Callable[[Any], Any]
) -> Any:
    """A copy of ``value`` with every nested node ``n`` replaced by ``fn(n)``.

    Nodes are visited in argument order: items in order, dict keys before their
    values. Containers that hold no node are returned as they are, not copied.
    """
    if is_node(value):
        return fn(value)
    kind = type(value)
    if kind in _SEQUENCES:
        items = [replace_nodes(v, is_node, fn) for v in value]
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return kind(items)
    if kind is dict:
        changed = False
        out = {}
        for k, v in value.items():
            k2, v2 = replace_nodes(k, is_node, fn), replace_nodes(v, is_node, fn)
            changed = changed or k2 is not k or v2 is not v
            out[k2] = v2
        return out if changed else value
    return value


def find_nodes(value: Any, is_node: Callable[[Any], bool]) -> list[Any]:
    """The nodes in ``value`` (itself or nested), in argument order, each once."""
    found: dict[int, Any] = {}

    def record(node: Any) -> Any:
        found.setdefault(id(node), node)
        return node

    replace_nodes(value, is_node, record)
    return list(found.values())
