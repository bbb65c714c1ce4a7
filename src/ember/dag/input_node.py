"""InputNode (the DAG's input placeholder) and InputAttributeNode (``inp[0]``, ``inp.x``)."""

from __future__ import annotations

from typing import Any

from ember.dag.dag_node import DAGNode

IN_CONTEXT_MANAGER = "__in_context_manager__"


class InputNode(DAGNode):
    """The value given to ``execute()``; use it as ``with InputNode() as inp:``.

    ``dag.execute(x)`` makes the node's value ``x``. Several arguments, or any
    keyword argument, make it a :class:`DAGInputData`: ``inp[i]`` is the i-th
    positional argument and ``inp.key``/``inp["key"]`` the keyword argument.
    """

    _is_input_node = True

    def __init__(
        self,
        *args: Any,
        input_type: Any = None,
        _other_args_to_resolve: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if args or kwargs:
            raise ValueError("InputNode should not take any args or kwargs.")
        self.input_attribute_nodes: dict[Any, InputAttributeNode] = {}
        self.input_type = input_type
        super().__init__([], {}, {}, dict(_other_args_to_resolve or {}))

    def __enter__(self) -> InputNode:
        self._bound_other_args_to_resolve[IN_CONTEXT_MANAGER] = True
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        assert other.get(IN_CONTEXT_MANAGER), (
            "InputNode is a singleton instance that should be only used in "
            "context manager for dag building and execution. See the docstring "
            "of class InputNode for examples."
        )
        in_args, in_kwargs = inputs
        if len(in_args) == 1 and not in_kwargs:
            return in_args[0]
        return DAGInputData(*in_args, **in_kwargs)

    def __getattr__(self, key: str) -> Any:
        if key.startswith("__") and key.endswith("__"):
            raise AttributeError(key)
        return self._attribute(key, "__getattr__")

    def __getitem__(self, key: int | str) -> InputAttributeNode:
        assert isinstance(key, (str, int)), (
            "Please only use int index or str as first-level key to "
            "access fields of dag input."
        )
        return self._attribute(key, "__getitem__")

    def _attribute(self, key: int | str, accessor: str) -> InputAttributeNode:
        nodes = self.__dict__["input_attribute_nodes"]
        if key not in nodes:
            nodes[key] = InputAttributeNode(self, key, accessor)
        node: InputAttributeNode = nodes[key]
        return node

    def _body_repr(self) -> str:
        return "__InputNode__"


class InputAttributeNode(DAGNode):
    """One field of the DAG's input: ``inp[0]``, ``inp["key"]`` or ``inp.key``."""

    def __init__(
        self,
        dag_input_node: InputNode,
        key: int | str,
        accessor_method: str,
        input_type: str | None = None,
    ) -> None:
        self._dag_input_node = dag_input_node
        self._key = key
        self._accessor_method = accessor_method
        super().__init__(
            [],
            {},
            {},
            {
                "dag_input_node": dag_input_node,
                "key": key,
                "accessor_method": accessor_method,
                "result_type_string": input_type,
            },
        )

    @property
    def key(self) -> int | str:
        """The index or name this node reads from the input."""
        return self._key

    def _execute_impl(
        self,
        args: list[Any],
        kwargs: dict[str, Any],
        other: dict[str, Any],
        inputs: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> Any:
        value = other["dag_input_node"]
        key = self._key
        if isinstance(value, DAGInputData):
            return value[key]
        if isinstance(key, str) and self._accessor_method == "__getattr__":
            return getattr(value, key)
        return value[key]

    def _body_repr(self) -> str:
        return f'["{self._key}"]'


class DAGInputData:
    """The input of a DAG executed with several arguments: ``[i]`` positional, ``["k"]`` keyword."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._args = list(args)
        self._kwargs = kwargs

    def __getitem__(self, key: int | str) -> Any:
        if isinstance(key, int):
            return self._args[key]
        if isinstance(key, str):
            return self._kwargs[key]
        raise ValueError(
            "Please only use int index or str as first-level key to "
            "access fields of dag input."
        )
