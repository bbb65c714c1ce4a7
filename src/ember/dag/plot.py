"""``ember.dag.plot`` (Ray's ``ray.dag.plot``): draw a task graph as a Graphviz picture.

:func:`to_dot` is the pure part: the graph's DOT source, one node per DAG
node (named as Ray names them: ``INPUT_NODE``, the function, class or method
name with ``_1``, ``_2``... for repeats) and an edge from each node to every
node that reads it. :func:`plot` writes that source to a ``.dot`` file as is;
other formats (``.png``, ``.svg``, ...) need the optional ``pydot`` package
and Graphviz's ``dot`` program.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from ember.dag.class_node import ClassMethodNode
from ember.dag.dag_node import DAGNode
from ember.dag.input_node import InputAttributeNode, InputNode
from ember.dag.output_node import MultiOutputNode


def _base_name(node: DAGNode) -> str:
    if isinstance(node, InputNode):
        return "INPUT_NODE"
    if isinstance(node, MultiOutputNode):
        return "MultiOutputNode"
    if isinstance(node, InputAttributeNode):
        return f"INPUT_ATTRIBUTE_NODE_{node._key}"
    name = node.get_options().get("name")
    if name:
        return str(name)
    if isinstance(node, ClassMethodNode):
        return node.get_method_name()
    return node._body_repr()


def _post_order(dag: DAGNode) -> list[DAGNode]:
    """Every node of ``dag`` once, each after the nodes it reads."""
    seen: set[str] = set()
    out: list[DAGNode] = []
    stack: list[tuple[DAGNode, bool]] = [(dag, False)]
    while stack:
        node, expanded = stack.pop()
        uid = node.get_stable_uuid()
        if expanded:
            if uid not in seen:
                seen.add(uid)
                out.append(node)
            continue
        if uid in seen:
            continue
        stack.append((node, True))
        for child in reversed(node._children()):
            if child.get_stable_uuid() not in seen:
                stack.append((child, False))
    return out


def to_dot(dag: DAGNode) -> str:
    """The DOT source of ``dag``'s graph (left to right, inputs first)."""
    if not isinstance(dag, DAGNode):
        raise TypeError(f"plot() takes a DAGNode, got {type(dag).__name__}")
    nodes = _post_order(dag)
    counts: dict[str, int] = {}
    names: dict[str, str] = {}
    for node in nodes:
        base = _base_name(node)
        n = counts.get(base, -1) + 1
        counts[base] = n
        unique = base in ("INPUT_NODE", "MultiOutputNode") or base.startswith(
            "INPUT_ATTRIBUTE_NODE_"
        )
        names[node.get_stable_uuid()] = base if n == 0 or unique else f"{base}_{n}"
    lines = ["digraph G {", "rankdir=LR;"]
    edges = 0
    for node in nodes:
        children = {c.get_stable_uuid(): c for c in node._children()}
        for uid in children:
            lines.append(
                f"{json.dumps(names[uid])} -> {json.dumps(names[node.get_stable_uuid()])};"
            )
            edges += 1
    if len(nodes) == 1 and edges == 0:
        lines.append(f"{json.dumps(names[dag.get_stable_uuid()])};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def plot(dag: DAGNode, to_file: str | None = None) -> Any:
    """Draw ``dag`` into ``to_file`` (default: a temporary ``.png``); the format is its
    extension (``png`` if it has none). In a Jupyter notebook, returns the image.

    Raises:
        ImportError: a format other than ``dot`` and no ``pydot`` (or no Graphviz).
    """
    source = to_dot(dag)
    tmp = None
    if to_file is None:
        tmp = tempfile.NamedTemporaryFile(suffix=".png")  # noqa: SIM115 - kept open until drawn
        to_file = tmp.name
    ext = os.path.splitext(to_file)[1][1:] or "png"
    try:
        if ext == "dot":
            with open(to_file, "w", encoding="utf-8") as f:
                f.write(source)
        else:
            _render(source, to_file, ext)
        try:
            from IPython import display  # type: ignore[import-not-found]
        except ImportError:
            return None
        return display.Image(filename=to_file)
    finally:
        if tmp is not None:
            tmp.close()


def _render(source: str, to_file: str, ext: str) -> None:
    try:
        import pydot  # type: ignore[import-not-found]
    except ImportError:
        raise ImportError(
            "pydot is required to plot a DAG as an image (pip install pydot); a "
            "'.dot' file needs nothing."
        ) from None
    (graph,) = pydot.graph_from_dot_data(source)
    try:
        graph.write(to_file, format=ext)
    except (OSError, pydot.InvocationException) as exc:  # no `dot` program
        raise ImportError(
            "Graphviz's `dot` program is required to plot a DAG as an image "
            f"({exc}); install graphviz, or write a '.dot' file."
        ) from exc
