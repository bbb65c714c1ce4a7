"""The Dask scheduler that runs each Dask task as an ember task (``ray_dask_get``).

Every node of the graph is submitted once, in ``dask.order``'s order, as soon
as the driver reaches it: a task's inputs are the refs of its dependencies,
passed as top-level arguments, so ember waits for them, places the task near
the bytes (its locality rule) and hands numpy buffers over without copying.
Nothing passes through the driver but the final results (or, for ``persist``,
not even those: the refs are returned). The driver drops its handle on an
intermediate result as soon as the last task that reads it is submitted, so
ember frees it once those tasks are done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Mapping
from typing import Any

import dask
from dask._task_spec import Alias, DataNode, GraphNode, Task
from dask.callbacks import local_callbacks, unpack_callbacks
from dask.highlevelgraph import HighLevelGraph
from dask.sizeof import sizeof

import ember
from ember.util.dask.callbacks import (
    PROGRESS_ACTOR_NAME,
    local_ray_callbacks,
    unpack_ray_callbacks,
)
from ember.util.dask.plan import graph_of, make_plan, nested_refs, replace_nested
from ember.util.dask.progress import show_progress

TOP_LEVEL_RESOURCES_ERR_MSG = (
    "Give task resources as ray_remote_args={'resources': {...}}, not as a "
    "'resources' keyword or annotation: the Dask-on-ember scheduler passes "
    "ray_remote_args to each task's .options()."
)

#: A graph literal larger than this is put in the object store once and passed
#: by ref, instead of being pickled into every task that reads it.
PUT_LITERALS_ABOVE = 100 * 1024


def enable_dask_on_ray(
    shuffle: str | None = "tasks", use_shuffle_optimization: bool | None = True
) -> Any:
    """Make ember the default Dask scheduler (returns a ``dask.config.set``).

    Use the result as a context manager to limit the scope. ``shuffle`` picks
    Dask's shuffle method ("tasks" works across nodes without a shared disk).
    ``use_shuffle_optimization`` is accepted for Ray's signature: Ray's
    shuffle rewrite applies only to the dataframe implementation Dask dropped
    in 2025, and ember has none.
    """
    del use_shuffle_optimization
    return dask.config.set(
        {"scheduler": ray_dask_get, "dataframe.shuffle.method": shuffle}
    )


def disable_dask_on_ray() -> Any:
    """Undo :func:`enable_dask_on_ray`: Dask's own default scheduler again."""
    return dask.config.set({"scheduler": None, "dataframe.shuffle.method": None})


def ray_dask_get(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """Compute ``keys`` of the Dask graph ``dsk``, each Dask task as an ember task.

    Pass it as ``scheduler=`` to ``dask.compute``/``.compute()``, or make it the
    default with :func:`enable_dask_on_ray`. Keywords:

    * ``ray_remote_args``: ``.options()`` for every task (per-layer ones come
      from ``dask.annotate(ray_remote_args=...)``);
    * ``ray_callbacks``: callbacks instead of the active ones;
    * ``ray_persist``: return the refs instead of the values (what
      :func:`ray_dask_persist` sets);
    * ``_ray_enable_progress_bar``: print progress (needs a
      ``ProgressBarCallback`` active);
    * ``num_workers``, ``pool``: accepted and ignored (submitting needs no
      thread pool here).
    """
    kwargs.pop("num_workers", None)
    kwargs.pop("pool", None)
    ray_callbacks = kwargs.pop("ray_callbacks", None)
    persist = bool(kwargs.pop("ray_persist", False))
    progress = bool(kwargs.pop("_ray_enable_progress_bar", False))
    if "resources" in kwargs:
        raise ValueError(TOP_LEVEL_RESOURCES_ERR_MSG)
    remote_args = _remote_args_by_key(
        dsk, dict(kwargs.pop("ray_remote_args", None) or {})
    )
    with (
        local_ray_callbacks(ray_callbacks) as ray_cbs,
        local_callbacks(kwargs.pop("callbacks", None)) as dask_cbs,
    ):
        run = _Run(graph_of(dsk), keys, remote_args, ray_cbs, dask_cbs)
        try:
            refs = run.submit_all()
            if persist:
                result = refs
            else:
                if progress:
                    show_progress(
                        ember.get_actor(PROGRESS_ACTOR_NAME), _flat_refs(refs)
                    )
                result = _fetch(refs)
            run.finish(result)
        finally:
            run.close()
    return result


def ray_dask_get_sync(dsk: Any, keys: Any, **kwargs: Any) -> Any:
    """Ray's synchronous variant; here the same as :func:`ray_dask_get`.

    ember submits from the calling thread in both, so there is nothing extra
    to serialize for debugging.
    """
    return ray_dask_get(dsk, keys, **kwargs)


class _Run:
    """One scheduler call: walks the plan, submits, keeps the refs still needed."""

    def __init__(
        self,
        graph: dict[Hashable, GraphNode],
        keys: Any,
        remote_args: Callable[[Hashable], dict[str, Any]],
        ray_cbs: Any,
        dask_cbs: Any,
    ) -> None:
        self.graph = graph
        self.keys = keys
        self.remote_args = remote_args
        self.cbs = unpack_ray_callbacks(ray_cbs)
        self.dask_cbs = list(dask_cbs)
        (
            self._start,
            self._start_state,
            self._pretask,
            self._posttask,
            self._finish,
        ) = unpack_callbacks(self.dask_cbs)
        self.refs: dict[Hashable, Any] = {}
        self.state: dict[str, Any] = {}
        self._failed = True

    def submit_all(self) -> Any:
        for cb in self._start:
            cb(self.graph)
        steps = make_plan(self.graph, self.keys)
        self.state = {
            "cache": self.refs,
            "ready": [],
            "running": set(),
            "finished": set(),
            "released": set(),
            "waiting": {s.key: set(s.node.dependencies) for s in steps},
            "dependencies": {s.key: set(s.node.dependencies) for s in steps},
        }
        for cb in self._start_state:
            cb(self.graph, self.state)
        worker = threading.get_ident()
        for step in steps:
            for cb in self._pretask:
                cb(step.key, self.graph, self.state)
            deps = {d: self.refs[d] for d in step.node.dependencies}
            self.refs[step.key] = self._submit(step.key, step.node, deps)
            self.state["waiting"].pop(step.key, None)
            self.state["finished"].add(step.key)
            for cb in self._posttask:
                cb(step.key, self.refs[step.key], self.graph, self.state, worker)
            for gone in step.release:
                self.refs.pop(gone, None)
                self.state["released"].add(gone)
        out = _nest(self.keys, self.refs)
        for cb in self.cbs.ray_postsubmit_all_cbs:
            cb(_flat_refs(out), self.graph)
        return out

    def finish(self, result: Any) -> None:
        self._failed = False
        for cb in self.cbs.ray_finish_cbs:
            cb(result)

    def close(self) -> None:
        """Dask's ``finish`` hooks, told whether the run failed."""
        for cb in self._finish:
            cb(self.graph, self.state, self._failed)

    def _submit(self, key: Hashable, node: GraphNode, deps: dict[Hashable, Any]) -> Any:
        if isinstance(node, DataNode):
            return _literal(node.value)
        if isinstance(node, Alias):
            return deps[node.target]
        for cb in self.cbs.ray_presubmit_cbs:
            alternative = cb(node, key, deps)
            if alternative is not None:
                return alternative
        if not isinstance(node, Task):
            raise TypeError(f"unexpected node in a Dask graph: {node!r}")
        dep_keys = tuple(deps)
        nested = nested_refs(node, _is_ref)
        ref = _dask_task.options(name=f"dask:{key!s}", **self.remote_args(key)).remote(
            node,
            dep_keys,
            len(nested),
            self.cbs.ray_pretask_cbs,
            self.cbs.ray_posttask_cbs,
            *(deps[k] for k in dep_keys),
            *nested,
        )
        for cb in self.cbs.ray_postsubmit_cbs:
            cb(node, key, deps, ref)
        return ref


@ember.remote
def _dask_task(
    node: Task,
    dep_keys: tuple[Hashable, ...],
    n_nested: int,
    pretask_cbs: list[Any],
    posttask_cbs: list[Any],
    *values: Any,
) -> Any:
    """Run one Dask task in a worker: its dependencies' values arrive resolved."""
    n_deps = len(dep_keys)
    if n_nested:
        node = replace_nested(node, _is_ref, iter(values[n_deps:]))  # type: ignore[assignment]
    states = [cb(node.key, values) if cb else None for cb in pretask_cbs]
    result = node(dict(zip(dep_keys, values[:n_deps], strict=True)))
    for i, cb in enumerate(posttask_cbs):
        if cb:
            cb(node.key, result, states[i] if states else None)
    return result


def _is_ref(value: Any) -> bool:
    return isinstance(value, ember.ObjectRef)


def _literal(value: Any) -> Any:
    if _is_ref(value) or sizeof(value) <= PUT_LITERALS_ABOVE:
        return value
    return ember.put(value)


def _nest(keys: Any, refs: Mapping[Hashable, Any]) -> Any:
    if isinstance(keys, list):
        return [_nest(k, refs) for k in keys]
    return refs[keys]


def _flat_refs(obj: Any) -> list[Any]:
    if isinstance(obj, list):
        return [r for item in obj for r in _flat_refs(item)]
    return [obj] if _is_ref(obj) else []


def _fetch(obj: Any) -> Any:
    """``obj`` (nested lists of refs and literals) with every ref's value, in one get."""
    refs = _flat_refs(obj)
    values = iter(ember.get(refs)) if refs else iter(())

    def put_back(x: Any) -> Any:
        if isinstance(x, list):
            return [put_back(i) for i in x]
        return next(values) if _is_ref(x) else x

    return put_back(obj)


def _remote_args_by_key(
    dsk: Any, base: dict[str, Any]
) -> Callable[[Hashable], dict[str, Any]]:
    """Each key's ``.options()``: the call's, then global annotations, then the layer's."""
    annotations = dask.get_annotations()
    if "resources" in annotations:
        raise ValueError(TOP_LEVEL_RESOURCES_ERR_MSG)
    common = {**base, **annotations.get("ray_remote_args", {})}
    per_key: dict[Hashable, Any] = {}
    if isinstance(dsk, HighLevelGraph):
        for layer in dsk.layers.values():
            found = layer.annotations or {}
            if "resources" in found:
                raise ValueError(TOP_LEVEL_RESOURCES_ERR_MSG)
            if "ray_remote_args" in found:
                per_key.update(dict.fromkeys(layer, found["ray_remote_args"]))
    elif not isinstance(dsk, Mapping) and hasattr(dsk, "__dask_annotations__"):
        found = dsk.__dask_annotations__()
        if "resources" in found:
            raise ValueError(TOP_LEVEL_RESOURCES_ERR_MSG)
        per_key.update(found.get("ray_remote_args", {}))

    def for_key(key: Hashable) -> dict[str, Any]:
        extra = per_key.get(key)
        if callable(extra):
            extra = extra(key)
        return {**common, **extra} if extra else common

    return for_key
