"""FunctionNode: a remote function bound with ``f.bind(...)``; executing it submits a task."""

from __future__ import annotations

from typing import Any

from ember.dag.dag_node import DAGNode


class FunctionNode(DAGNode):
    """A task: ``body.remote(*args, **kwargs)`` when executed.

    ``body`` is the remote function (or its ``.options(...)`` result) that
    ``.bind()`` was called on; ``func_options`` are the options it carries.
    """

    def __init__(
        self,
        func_body: Any,
        func_args: tuple[Any, ...],
        func_kwargs: dict[str, Any],
        func_options: dict[str, Any],
        other_args_to_resolve: dict[str, Any] | None = None,
    ) -> None:
        self._body = func_body
        super().__init__(func_args, func_kwargs, func_options, other_args_to_resolve)

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        return self._body.remote(*args, **kwargs)

    def _body_repr(self) -> str:
        return str(getattr(self._body, "__name__", self._body))
