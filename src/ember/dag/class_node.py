"""ClassNode (an actor bound with ``Cls.bind(...)``) and ClassMethodNode (a bound method call).

A ClassNode creates a new actor on every ``execute()``. Method calls bound on
it (``node.method.bind(...)``) are chained: each remembers the call bound
before it on the same ClassNode and executes it first, so the actor sees its
calls in binding order. A method bound on a live actor handle
(``handle.method.bind(...)``) calls that actor on every ``execute()``.
"""

from __future__ import annotations

from typing import Any

from ember.dag.constants import (
    BIND_INDEX_KEY,
    IS_CLASS_METHOD_OUTPUT_KEY,
    PARENT_CLASS_NODE_KEY,
    PREV_CLASS_METHOD_CALL_KEY,
)
from ember.dag.dag_node import DAGNode


class ClassNode(DAGNode):
    """An actor creation: ``body.remote(*args, **kwargs)`` when executed (a new actor each time).

    ``body`` is the actor class (or its ``.options(...)`` result) that ``.bind()``
    was called on and ``cls`` the user's class (it names the methods).
    """

    def __init__(
        self,
        cls_body: Any,
        cls_args: tuple[Any, ...],
        cls_kwargs: dict[str, Any],
        cls_options: dict[str, Any],
        other_args_to_resolve: dict[str, Any] | None = None,
        *,
        cls: type | None = None,
    ) -> None:
        self._body = cls_body
        self._cls = cls
        self._last_call: ClassMethodNode | None = None
        super().__init__(cls_args, cls_kwargs, cls_options, other_args_to_resolve)
        if any(c._is_input_node for c in _all_nodes_below(self)):
            raise ValueError(
                "InputNode handles user dynamic input the DAG, and "
                "cannot be used as args, kwargs, or other_args_to_resolve "
                "in ClassNode constructor because it is not available at "
                "class construction or binding time."
            )

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        return self._body.remote(*args, **kwargs)

    def __getattr__(self, method_name: str) -> Any:
        if method_name.startswith("__") and method_name.endswith("__"):
            raise AttributeError(method_name)
        cls = self.__dict__.get("_cls")
        if method_name == "bind" and (cls is None or not hasattr(cls, "bind")):
            raise AttributeError(f".bind() cannot be used again on {type(self)} ")
        if cls is not None and not callable(getattr(cls, method_name, None)):
            raise AttributeError(
                f"type object {cls.__name__!r} has no attribute {method_name!r}"
            )
        return _UnboundClassMethodNode(self, method_name, {})

    def _body_repr(self) -> str:
        return str(getattr(self._body, "__name__", self._body))


class _UnboundClassMethodNode:
    """``class_node.method``: call ``.bind(...)`` (optionally after ``.options(...)``)."""

    def __init__(self, actor: ClassNode, method_name: str, options: dict[str, Any]):
        self._actor = actor
        self._method_name = method_name
        self._options = options

    def bind(self, *args: Any, **kwargs: Any) -> ClassMethodNode:
        node = ClassMethodNode(
            self._method_name,
            args,
            kwargs,
            self._options,
            {
                PARENT_CLASS_NODE_KEY: self._actor,
                PREV_CLASS_METHOD_CALL_KEY: self._actor._last_call,
            },
        )
        self._actor._last_call = node
        return node

    def options(self, **options: Any) -> _UnboundClassMethodNode:
        self._options = options
        return self

    def __getattr__(self, attr: str) -> Any:
        if attr == "remote":
            raise AttributeError(
                ".remote() cannot be used on ClassMethodNodes. Use .bind() instead "
                "to express an symbolic actor call."
            )
        raise AttributeError(attr)


class ClassMethodNode(DAGNode):
    """An actor method call: ``actor.<method>.options(**options).remote(*args, **kwargs)``.

    With ``is_class_method_output`` in ``other_args_to_resolve`` the node is one
    return value of a multi-return call instead: its args are ``(call, index)``.
    """

    def __init__(
        self,
        method_name: str,
        method_args: tuple[Any, ...],
        method_kwargs: dict[str, Any],
        method_options: dict[str, Any],
        other_args_to_resolve: dict[str, Any],
    ) -> None:
        self._method_name = method_name
        self._parent_class_node = other_args_to_resolve.get(PARENT_CLASS_NODE_KEY)
        self._prev_class_method_call = other_args_to_resolve.get(
            PREV_CLASS_METHOD_CALL_KEY
        )
        self._bind_index = other_args_to_resolve.get(BIND_INDEX_KEY)
        self._is_class_method_output = bool(
            other_args_to_resolve.get(IS_CLASS_METHOD_OUTPUT_KEY, False)
        )
        super().__init__(
            method_args, method_kwargs, method_options, other_args_to_resolve
        )

    @property
    def is_class_method_call(self) -> bool:
        """True for a method call, False for one output of a multi-return call."""
        return not self._is_class_method_output

    @property
    def is_class_method_output(self) -> bool:
        """True if this node is one output of a multi-return method call."""
        return self._is_class_method_output

    @property
    def class_method_call(self) -> ClassMethodNode | None:
        """For an output node: the call it is an output of."""
        return self._bound_args[0] if self._is_class_method_output else None

    @property
    def output_idx(self) -> int | None:
        """For an output node: which return value it is."""
        return self._bound_args[1] if self._is_class_method_output else None

    def get_method_name(self) -> str:
        return self._method_name

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        if self._is_class_method_output:
            return args[0][args[1]]
        method = getattr(other[PARENT_CLASS_NODE_KEY], self._method_name)
        if self._bound_options:
            method = method.options(**self._bound_options)
        return method.remote(*args, **kwargs)

    def _body_repr(self) -> str:
        return f"{self._method_name}()"


def method_nodes(
    handle: Any,
    method_name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    options: dict[str, Any],
    num_returns: Any,
    bind_index: int,
) -> ClassMethodNode | tuple[ClassMethodNode, ...]:
    """``handle.method.bind(...)`` on a live actor: one node, or one per return value."""
    node = ClassMethodNode(
        method_name,
        args,
        kwargs,
        options,
        {
            PARENT_CLASS_NODE_KEY: handle,
            PREV_CLASS_METHOD_CALL_KEY: None,
            BIND_INDEX_KEY: bind_index,
        },
    )
    if not isinstance(num_returns, int) or num_returns <= 1:
        return node
    return tuple(
        ClassMethodNode(
            f"return_idx_{i}",
            (node, i),
            {},
            {},
            {IS_CLASS_METHOD_OUTPUT_KEY: True, PARENT_CLASS_NODE_KEY: handle},
        )
        for i in range(num_returns)
    )


def _all_nodes_below(node: DAGNode) -> list[DAGNode]:
    seen: dict[str, DAGNode] = {}
    stack = node._children()
    while stack:
        n = stack.pop()
        if n._stable_uuid not in seen:
            seen[n._stable_uuid] = n
            stack.extend(n._children())
    return list(seen.values())
