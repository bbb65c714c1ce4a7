"""Dask on ember: a Dask scheduler that runs Dask graphs as ember tasks (``ray.util.dask``).

``dask.compute(x, scheduler=ray_dask_get)`` (or ``enable_dask_on_ray()`` once)
runs every Dask task as an ember task; ``ray_dask_persist`` keeps the results
in ember's object store. The ``ember_*`` names are aliases of Ray's.

Importing this module makes ``dask.persist`` and the collections' ``.persist()``
keep refs whenever the scheduler they resolve to is this one (Ray patches them
too; here the wrappers leave other schedulers' calls untouched).
"""

from __future__ import annotations

from typing import Any

import dask
import dask.base

from ember.util.dask.callbacks import (
    ProgressBarCallback,
    RayDaskCallback,
    local_ray_callbacks,
    unpack_ray_callbacks,
)
from ember.util.dask.plan import DaskGraphError
from ember.util.dask.scheduler import (
    disable_dask_on_ray,
    enable_dask_on_ray,
    ray_dask_get,
    ray_dask_get_sync,
)

ember_dask_get = ray_dask_get
ember_dask_get_sync = ray_dask_get_sync
enable_dask_on_ember = enable_dask_on_ray
disable_dask_on_ember = disable_dask_on_ray

_OURS = (ray_dask_get, ray_dask_get_sync)
_dask_persist = dask.base.persist
_mixin_persist = dask.base.DaskMethodsMixin.persist


def ray_dask_persist(*args: Any, **kwargs: Any) -> Any:
    """``dask.persist`` whose results stay in ember's object store (refs in the graph).

    Without a ``scheduler=`` and with none set in Dask's config, the scheduler
    is :func:`ray_dask_get` (Ray would use the collection's default scheduler
    and return plain values).
    """
    kwargs["ray_persist"] = True
    if kwargs.get("scheduler") is None and dask.config.get("scheduler", None) is None:
        kwargs["scheduler"] = ray_dask_get
    return _dask_persist(*args, **kwargs)


ember_dask_persist = ray_dask_persist


def _scheduler_is_ours(scheduler: Any) -> bool:
    try:
        chosen = dask.base.get_scheduler(scheduler=scheduler)
    except Exception:  # noqa: BLE001 - dask decides later and reports its own error
        return False
    return chosen in _OURS


def _persist(*args: Any, **kwargs: Any) -> Any:
    if _scheduler_is_ours(kwargs.get("scheduler")):
        kwargs.setdefault("ray_persist", True)
    return _dask_persist(*args, **kwargs)


def _persist_method(self: Any, **kwargs: Any) -> Any:
    if _scheduler_is_ours(kwargs.get("scheduler")):
        kwargs.setdefault("ray_persist", True)
    return _mixin_persist(self, **kwargs)


_persist.__doc__ = _dask_persist.__doc__
_persist_method.__doc__ = _mixin_persist.__doc__
dask.persist = _persist
dask.base.DaskMethodsMixin.persist = _persist_method  # type: ignore[method-assign]

__all__ = [
    "DaskGraphError",
    "ProgressBarCallback",
    "RayDaskCallback",
    "disable_dask_on_ember",
    "disable_dask_on_ray",
    "ember_dask_get",
    "ember_dask_get_sync",
    "ember_dask_persist",
    "enable_dask_on_ember",
    "enable_dask_on_ray",
    "local_ray_callbacks",
    "ray_dask_get",
    "ray_dask_get_sync",
    "ray_dask_persist",
    "unpack_ray_callbacks",
]
