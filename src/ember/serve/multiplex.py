"""``@serve.multiplexed``: a replica keeps up to N models loaded, least recently used out."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import ember
from ember.serve import context
from ember.serve._common import CONTROLLER_NAME, NAMESPACE, deployment_key
from ember.serve.exceptions import ServeConfigError

__all__ = ["multiplexed"]

logger = logging.getLogger(__name__)


class _ModelCache:
    def __init__(self, load: Callable[[str], Any], capacity: int) -> None:
        self.load = load
        self.capacity = capacity
        self.models: OrderedDict[str, Any] = OrderedDict()
        self.loading: dict[str, asyncio.Future[Any]] = {}

    async def get(self, model_id: str) -> Any:
        if model_id in self.models:
            self.models.move_to_end(model_id)
            return self.models[model_id]
        if model_id in self.loading:
            return await asyncio.shield(self.loading[model_id])
        fut = asyncio.get_running_loop().create_future()
        self.loading[model_id] = fut
        try:
            while len(self.models) >= self.capacity:
                _, old = self.models.popitem(last=False)
                await _unload(old)
            model = await self.load(model_id)
            self.models[model_id] = model
            fut.set_result(model)
            _report(list(self.models))
            return model
        except BaseException as e:
            fut.set_exception(e)
            fut.exception()  # retrieved: waiters re-raise it
            raise
        finally:
            self.loading.pop(model_id, None)


def _report(model_ids: list[str]) -> None:
    """Tell the controller which models this replica holds (routers prefer it for them)."""
    ctx = context.current_replica()
    if ctx is None:
        return  # not in a replica (a unit test, a plain actor)
    try:
        controller = ember.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
        controller.record_model_ids.remote(
            deployment_key(ctx.app_name, ctx.deployment), ctx.replica_tag, model_ids
        )
    except Exception:
        logger.warning("could not report the multiplexed models", exc_info=True)


async def _unload(model: Any) -> None:
    fn = getattr(model, "__del__", None)
    if fn is None:
        return
    r = fn()
    if inspect.isawaitable(r):
        await r


def multiplexed(
    func: Callable[..., Any] | None = None, max_num_models_per_replica: int = 3
) -> Any:
    """Cache what an ``async def get_model(self, model_id)`` loads, per replica."""
    if not isinstance(max_num_models_per_replica, int) or (
        max_num_models_per_replica < 1 and max_num_models_per_replica != -1
    ):
        raise ServeConfigError("max_num_models_per_replica must be -1 or an int >= 1")
    capacity = max_num_models_per_replica if max_num_models_per_replica > 0 else 1 << 30

    def wrap(fn: Callable[..., Any]) -> Any:
        if not inspect.iscoroutinefunction(fn):
            raise TypeError("@serve.multiplexed must decorate an 'async def' function")
        params = list(inspect.signature(fn).parameters)
        is_method = bool(params) and params[0] == "self"
        attr = f"__serve_models_{fn.__name__}"
        shared: list[_ModelCache] = []

        @functools.wraps(fn)
        async def wrapper(*args: Any) -> Any:
            if is_method:
                owner, model_id = args[0], args[1]
                cache = owner.__dict__.get(attr)
                if cache is None:
                    cache = owner.__dict__[attr] = _ModelCache(
                        functools.partial(fn, owner), capacity
                    )
            else:
                model_id = args[0]
                if not shared:
                    shared.append(_ModelCache(fn, capacity))
                cache = shared[0]
            if not isinstance(model_id, str):
                raise TypeError(f"model_id must be a str, got {model_id!r}")
            return await cache.get(model_id)

        return wrapper

    if func is not None:
        return wrap(func)
    return wrap
