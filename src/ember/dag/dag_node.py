"""DAGNode: a lazily bound call, and ``execute()``, which submits a DAG's calls once each.

Execution walks the graph from the node ``execute`` is called on, bottom up:
a node's arguments, keyword arguments and ``other_args_to_resolve`` (the actor a
method node calls, the method call bound before it) are executed first, in that
order, and each node nested in them (also inside lists, tuples, dicts and sets)
is replaced by its result: an ObjectRef for a task or method call, an actor
handle for a class node, the input value for an input node. Every node runs at
most once per ``execute()``: results are kept by the node's stable uuid for the
duration of the call, so a node shared by two consumers is submitted once.
"""

from __future__ import annotations

import uuid
import warnings
from typing import Any

from ember.dag import scan


def is_node(value: Any) -> bool:
    return isinstance(value, DAGNode)


class DAGNode:
    """A node of a lazy task graph: bound arguments, options, and how to execute it."""

    #: True for InputNode: each DAG may hold one
    _is_input_node = False

    def __init__(
        self,
        args: tuple[Any, ...] | list[Any],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        other_args_to_resolve: dict[str, Any] | None,
    ) -> None:
        self._bound_args: tuple[Any, ...] | list[Any] = args or []
        self._bound_kwargs: dict[str, Any] = kwargs or {}
        self._bound_options: dict[str, Any] = options or {}
        self._bound_other_args_to_resolve: dict[str, Any] = other_args_to_resolve or {}
        self._stable_uuid = uuid.uuid4().hex

    # -- what was bound -------------------------------------------------------------
    def get_args(self) -> tuple[Any, ...] | list[Any]:
        """The positional arguments bound to this node."""
        return self._bound_args

    def get_kwargs(self) -> dict[str, Any]:
        """A copy of the keyword arguments bound to this node."""
        return dict(self._bound_kwargs)

    def get_options(self) -> dict[str, Any]:
        """A copy of the options this node is submitted with."""
        return dict(self._bound_options)

    def get_other_args_to_resolve(self) -> dict[str, Any]:
        """A copy of the node's other inputs (e.g. the actor a method node calls)."""
        return dict(self._bound_other_args_to_resolve)

    def get_stable_uuid(self) -> str:
        """A hex id made once for this node."""
        return self._stable_uuid

    def _children(self) -> list[DAGNode]:
        """Every node this one reads, nested or not, in execution order."""
        return scan.find_nodes(
            [
                self._bound_args,
                self._bound_kwargs,
                self._bound_other_args_to_resolve,
            ],
            is_node,
        )

    # -- execution ------------------------------------------------------------------
    def execute(self, *args: Any, **kwargs: Any) -> Any:
        """Submit this node and every node it depends on; ``args``/``kwargs`` feed the InputNode.

        Returns an ObjectRef (a list of them for a MultiOutputNode or a call with
        several returns), or an actor handle for a class node.
        """
        warnings.warn(
            "DAGNode.execute() is deprecated and will be removed in a future release.",
            DeprecationWarning,
            stacklevel=2,
        )
        return _Execution(args, kwargs).run(self)

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        """Submit this node with its (already resolved) arguments; return its result."""
        raise NotImplementedError

    # -- misuse ---------------------------------------------------------------------
    def __getattr__(self, attr: str) -> Any:
        if attr == "bind":
            raise AttributeError(f".bind() cannot be used again on {type(self)} ")
        if attr == "remote":
            raise AttributeError(
                f".remote() cannot be used on {type(self)}. To execute the task "
                "graph for this node, use .execute()."
            )
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {attr!r}"
        )

    def __getstate__(self) -> dict[str, Any]:
        return self.__dict__

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)

    def _body_repr(self) -> str:
        return ""

    def __str__(self) -> str:
        return (
            f"({type(self).__name__}, {self._stable_uuid})(body={self._body_repr()}, "
            f"args={list(self._bound_args)!r}, kwargs={self._bound_kwargs!r}, "
            f"options={self._bound_options!r})"
        )

    def __repr__(self) -> str:
        return self.__str__()


class _Execution:
    """One ``execute()``: each node's result, by stable uuid, for this call only."""

    def __init__(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        self._inputs = (args, kwargs)
        self._results: dict[str, Any] = {}
        self._input_uuid: str | None = None

    def run(self, root: DAGNode) -> Any:
        # Iterative post-order walk, so long chains do not hit the recursion limit.
        stack: list[tuple[DAGNode, bool]] = [(root, False)]
        while stack:
            node, expanded = stack.pop()
            key = node._stable_uuid
            if key in self._results:
                continue
            if not expanded:
                stack.append((node, True))
                pending = [
                    c for c in node._children() if c._stable_uuid not in self._results
                ]
                stack.extend((c, False) for c in reversed(pending))
                continue
            self._results[key] = self._execute(node)
        return self._results[root._stable_uuid]

    def _execute(self, node: DAGNode) -> Any:
        if node._is_input_node:
            if self._input_uuid is None:
                self._input_uuid = node._stable_uuid
            elif self._input_uuid != node._stable_uuid:
                raise AssertionError("Each DAG should only have one unique InputNode.")

        def result(child: DAGNode) -> Any:
            return self._results[child._stable_uuid]

        args = scan.replace_nodes(list(node._bound_args), is_node, result)
        kwargs = scan.replace_nodes(node._bound_kwargs, is_node, result)
        other = scan.replace_nodes(node._bound_other_args_to_resolve, is_node, result)
        return node._execute_impl(args, kwargs, other, self._inputs)
