"""MultiOutputNode: several nodes as one DAG output; executing it gives a list of results."""

from __future__ import annotations

from typing import Any

from ember.dag.dag_node import DAGNode


class MultiOutputNode(DAGNode):
    """The end of a DAG with several outputs: ``execute()`` returns their results, in order."""

    def __init__(
        self,
        args: list[DAGNode] | tuple[DAGNode, ...],
        other_args_to_resolve: dict[str, Any] | None = None,
    ) -> None:
        if isinstance(args, tuple):
            args = list(args)
        if not isinstance(args, list):
            raise ValueError(f"Invalid input type for `args`, {type(args)}.")
        super().__init__(args, {}, {}, other_args_to_resolve)

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        return args

    def _body_repr(self) -> str:
        return "__MultiOutputNode__"
