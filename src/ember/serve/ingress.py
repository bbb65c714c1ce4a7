"""``@serve.ingress(app)``: a deployment class answers HTTP through an ASGI app (FastAPI).

Routes whose endpoints are methods of the class are rebuilt so that ``self`` is
filled with the replica's instance (a FastAPI dependency), as Ray's class-based views do.
"""

from __future__ import annotations

import copyreg
import functools
import inspect
from collections.abc import Callable
from typing import Any

from ember.serve import context

__all__ = ["ingress"]

_ROUTE_FIELDS = (
    "response_model",
    "status_code",
    "tags",
    "dependencies",
    "summary",
    "description",
    "response_description",
    "responses",
    "deprecated",
    "methods",
    "operation_id",
    "include_in_schema",
    "response_class",
    "name",
)


def _servable() -> Any:
    return context.get_replica_context().servable_object


def _bind_self(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    from fastapi import Depends

    sig = inspect.signature(endpoint)
    params = list(sig.parameters.values())
    new_params = [
        params[0].replace(
            default=Depends(_servable), kind=inspect.Parameter.KEYWORD_ONLY
        )
    ]
    new_params += [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params[1:]]

    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def wrapper(**kw: Any) -> Any:
            return await endpoint(**kw)

    else:

        @functools.wraps(endpoint)
        def wrapper(**kw: Any) -> Any:
            return endpoint(**kw)

    wrapper.__signature__ = sig.replace(parameters=new_params)  # type: ignore[attr-defined]
    del wrapper.__wrapped__
    return wrapper


def _make_class_based(app: Any, cls: type) -> None:
    try:
        from fastapi.routing import APIRoute
    except ImportError:
        return
    members = set(vars(cls).values())
    routes = list(app.router.routes)
    for i, route in enumerate(routes):
        if not isinstance(route, APIRoute) or route.endpoint not in members:
            continue
        params = list(inspect.signature(route.endpoint).parameters)
        if not params or params[0] != "self":
            continue
        kwargs = {f: getattr(route, f) for f in _ROUTE_FIELDS if hasattr(route, f)}
        app.router.routes.remove(route)
        app.add_api_route(route.path, _bind_self(route.endpoint), **kwargs)
        new = app.router.routes.pop()
        app.router.routes.insert(i, new)


def _reduce_state(state: Any) -> Any:
    return (type(state), (dict(state._state),))


def _picklable_state() -> None:
    """starlette's ``State`` (an app's ``.state``) recurses forever when unpickled by
    default (its ``__getattr__`` reads ``_state`` before it exists); pickle its dict."""
    try:
        from starlette.datastructures import State
    except ImportError:
        return
    copyreg.pickle(State, _reduce_state)


def ingress(app: Any) -> Callable[[type], type]:
    """Serve HTTP for the decorated class through ``app`` (an ASGI app, e.g. FastAPI)."""

    def wrap(cls: type) -> type:
        if not inspect.isclass(cls):
            raise TypeError("@serve.ingress must decorate a class")
        _picklable_state()
        _make_class_based(app, cls)
        cls._serve_asgi_app = app  # type: ignore[attr-defined]
        return cls

    return wrap
