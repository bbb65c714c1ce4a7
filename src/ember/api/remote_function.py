"""RemoteFunction: ``@remote`` functions, ``.remote()`` and ``.options()``."""

from __future__ import annotations

import inspect
from typing import Any

from ember.api import options as opt
from ember.api.bundle_fit import check_request_fits
from ember.api.runtime_access import runtime


class RemoteFunction:
    """A function that runs as a task: call ``f.remote(...)`` to get ObjectRefs."""

    def __init__(self, function: Any, options: dict[str, Any]) -> None:
        self._is_generator = inspect.isgeneratorfunction(function)
        opt.validate_task_options(
            options, in_options=False, is_generator=self._is_generator
        )
        self._function = function
        self._options = options
        self._name = getattr(function, "__name__", "function")
        self._export_cache: dict[int, bytes] = {}
        self.__doc__ = function.__doc__
        self.__name__ = self._name
        self.__qualname__ = getattr(function, "__qualname__", self._name)
        self.__module__ = getattr(function, "__module__", None)  # type: ignore[assignment]
        self.__wrapped__ = function

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError(
            f"Remote functions cannot be called directly. Instead of running "
            f"'{self._name}()', try '{self._name}.remote()'."
        )

    def options(self, **task_options: Any) -> _BoundFunction:
        """Override options for the calls made through the returned object."""
        opt.validate_task_options(
            task_options, in_options=True, is_generator=self._is_generator
        )
        return _BoundFunction(self, opt.update_options(self._options, task_options))

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        """Submit the task; return its ObjectRef(s) (or an ObjectRefGenerator)."""
        return self._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> Any:
        """A lazy call for a DAG (``ember.dag``): ``.execute()`` submits it."""
        from ember.dag.function_node import FunctionNode

        return FunctionNode(self, args, kwargs, dict(self._options))

    def _remote(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> Any:
        num_returns = opt.resolve_num_returns(
            options.get("num_returns"), self._is_generator
        )
        check_request_fits(options, self._name, actor=False)
        return runtime().submit_task(
            self._function,
            self._export_cache,
            options.get("name") or self._name,
            args,
            kwargs,
            options,
            num_returns,
        )


class _BoundFunction:
    """``f.options(...)``: the same function with other options."""

    def __init__(self, fn: RemoteFunction, options: dict[str, Any]) -> None:
        self._fn = fn
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn._remote(args, kwargs, self._options)

    def bind(self, *args: Any, **kwargs: Any) -> Any:
        """A lazy call with these options, for a DAG (``ember.dag``)."""
        from ember.dag.function_node import FunctionNode

        return FunctionNode(self, args, kwargs, dict(self._options))

    def options(self, **task_options: Any) -> _BoundFunction:
        opt.validate_task_options(
            task_options, in_options=True, is_generator=self._fn._is_generator
        )
        return _BoundFunction(self._fn, opt.update_options(self._options, task_options))
