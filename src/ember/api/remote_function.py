"""RemoteFunction: ``@remote`` functions, ``.remote()`` and ``.options()``."""

from __future__ import annotations

import inspect
from typing import Any

from ember.api import options as opt
from ember.api.runtime_access import (
    build_call,
    env_vars_of,
    export,
    local_mode,
    placed_resources,
    resources_of,
    retry_exception_fields,
    strategy_of,
    worker,
)
from ember.runtime.object_ref import ObjectRefGenerator
from ember.runtime.submitter import PendingTask


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
        raise NotImplementedError(
            "DAG building with .bind() is not supported by ember yet"
        )

    def _remote(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], options: dict[str, Any]
    ) -> Any:
        num_returns = opt.resolve_num_returns(
            options.get("num_returns"), self._is_generator
        )
        lm = local_mode()
        if lm is not None:
            return lm.run_task(self._function, args, kwargs, num_returns, options)
        cw = worker()
        streaming = num_returns in ("streaming", "dynamic")
        n = 1 if streaming else int(num_returns)
        key = export(cw, self._function, self._export_cache)
        spec, frames, return_oids, refs, arg_oids = build_call(
            cw, options.get("name") or self._name, args, kwargs, n, streaming
        )
        spec.function_key = key
        spec.resources = resources_of(options, 1.0)
        spec.env_vars = env_vars_of(cw, options)
        spec.strategy = strategy_of(options)
        spec.resources = placed_resources(spec.resources, spec.strategy)
        spec.retry_exceptions, spec.retry_exception_types = retry_exception_fields(
            options.get("retry_exceptions", False)
        )
        max_retries = options.get("max_retries")
        retries = 3 if max_retries is None else int(max_retries)
        task = PendingTask(spec, frames, return_oids, arg_oids, retries)
        cw.loop_thread.call_batched(cw.tasks.submit, task)
        if streaming:
            return ObjectRefGenerator(spec.task_id, cw.address)
        if n == 0:
            return None
        if n == 1 and options.get("num_returns") in (None, 1):
            return refs[0]
        return refs


class _BoundFunction:
    """``f.options(...)``: the same function with other options."""

    def __init__(self, fn: RemoteFunction, options: dict[str, Any]) -> None:
        self._fn = fn
        self._options = options

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self._fn._remote(args, kwargs, self._options)

    def options(self, **task_options: Any) -> _BoundFunction:
        opt.validate_task_options(
            task_options, in_options=True, is_generator=self._fn._is_generator
        )
        return _BoundFunction(self._fn, opt.update_options(self._options, task_options))
