"""Building task and actor specs for the cluster runtime: export, arguments, resources."""

from __future__ import annotations

import hashlib
from typing import Any

from ember.common.ids import new_task_id, object_id_for
from ember.protocol.messages import ObjRef, TaskSpec
from ember.runtime.core_worker import CoreWorker
from ember.runtime.function_pickles import dumps_function
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import args_blob, dumps_plain
from ember.runtime.task_context import get as current_task
from ember.runtime_env import runtime_env as renv
from ember.scheduler import labels


def export(cw: CoreWorker, obj: Any, cache: dict[int, bytes]) -> bytes:
    """Put a function or class into the function table once; return its key."""
    key = cache.get(id(cw))
    if key is not None:
        return key
    from ember.protocol.messages import KvPutRequest

    data = dumps_function(obj)
    key = hashlib.blake2b(data, digest_size=16).digest()
    cw.run(
        cw.control.call(
            "control.kv_put",
            KvPutRequest(namespace="fn", key=key, value=data, overwrite=False),
        )
    )
    cache.clear()
    cache[id(cw)] = key
    return key


def resources_of(opts: dict[str, Any], default_cpus: float) -> dict[str, float]:
    res: dict[str, float] = {}
    cpus = opts.get("num_cpus")
    res["CPU"] = float(default_cpus if cpus is None else cpus)
    if opts.get("num_gpus"):
        res["GPU"] = float(opts["num_gpus"])
    if opts.get("memory"):
        res["memory"] = float(opts["memory"])
    for k, v in (opts.get("resources") or {}).items():
        res[k] = float(v)
    return {k: v for k, v in res.items() if v > 0}


def env_vars_of(job_env: dict[str, Any] | None, opts: dict[str, Any]) -> dict[str, str]:
    """The task's environment variables: the job's (or running task's), then its own."""
    env: dict[str, str] = {}
    if job_env is None:  # inside a worker: inherit the running task's env
        ctx = current_task()
        job_env = ctx.extra.get("runtime_env", {}) if ctx else {}
    env.update((job_env or {}).get("env_vars", {}))
    env.update((opts.get("runtime_env") or {}).get("env_vars", {}) or {})
    return env


#: (the user's runtime_env dict, its normal form) by id, for options reused per call
_normal_forms: dict[int, tuple[Any, dict[str, Any]]] = {}


def _task_env(own: Any) -> dict[str, Any]:
    """The normal form of a task's or actor's own runtime_env (cached per dict)."""
    hit = _normal_forms.get(id(own))
    if hit is not None and hit[0] is own:
        return hit[1]
    normal = renv.normalize(own, job_level=False)
    if len(_normal_forms) >= 256:
        _normal_forms.pop(next(iter(_normal_forms)))
    _normal_forms[id(own)] = (own, normal)
    return normal


def runtime_env_of(
    job_env: dict[str, Any] | None, opts: dict[str, Any]
) -> dict[str, Any]:
    """What a node must set up for the task or actor (``TaskSpec.runtime_env``).

    Its own runtime_env laid over the job's (or, in a worker, the running
    task's), as Ray merges them; env vars travel apart (:func:`env_vars_of`).
    """
    if job_env is None:  # inside a worker: inherit the running task's env
        ctx = current_task()
        job_env = ctx.extra.get("runtime_env", {}) if ctx else {}
    own = opts.get("runtime_env")
    if not own:
        return renv.for_wire(job_env or {}) if job_env else {}
    return renv.for_wire(renv.merge(job_env, _task_env(own)))


def build_call(
    cw: CoreWorker,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    num_returns: int,
    streaming: bool,
) -> tuple[TaskSpec, list[Any], list[bytes], list[ObjectRef], list[bytes]]:
    """Serialize arguments and name the returns of a task or actor call.

    Returns the spec, the frames carrying argument buffers, the return ids,
    the return refs and the ids the pending call keeps alive.
    """
    is_ref = _is_ref
    ser, refs = args_blob(args, kwargs, is_ref)
    task_id = new_task_id()
    arg_oids = [r._id for r in refs] + [r._id for r in ser.contained]
    owners = [r._owner for r in refs] + [r._owner for r in ser.contained]
    spec = TaskSpec(
        task_id=task_id,
        job_id=cw.job_id,
        name=name,
        num_returns=num_returns,
        streaming=streaming,
        owner=cw.address,
        ref_args=[ObjRef(oid=r._id, owner=r._owner or cw.address) for r in refs],
    )
    frames: list[Any] = []
    if ser.total_bytes() >= cw.config.inline_threshold_bytes:
        oid = object_id_for(new_task_id(), 0)
        cw.objects.store_serialized(oid, ser)
        spec.args_ref = ObjRef(oid=oid, owner=cw.address)
        arg_oids.append(oid)
        owners.append(cw.address)
    else:
        spec.args = ser.data
        spec.nargbufs = len(ser.buffers)
        frames = [memoryview(b).cast("B") for b in ser.buffers]
        if frames:  # the caller may mutate its arrays after .remote(): copy now
            frames = [bytes(f) for f in frames]
    cw.refs.add_submitted(arg_oids, owners)
    n = 0 if streaming else num_returns
    return_oids = [object_id_for(task_id, i + 1) for i in range(n)]
    return_refs = []
    for oid in return_oids:
        cw.objects.add_pending(oid)
        return_refs.append(ObjectRef(oid, cw.address))
    return spec, frames, return_oids, return_refs, arg_oids


def _is_ref(v: Any) -> bool:
    return type(v) is ObjectRef


def retry_exception_fields(value: Any) -> tuple[bool, bytes]:
    if isinstance(value, (list, tuple)):
        return False, dumps_plain(tuple(value))
    return bool(value), b""


def strategy_of(options: dict[str, Any]) -> dict[str, Any]:
    """The wire form of the ``scheduling_strategy`` option."""
    s = options.get("scheduling_strategy")
    pg = options.get("placement_group")
    if pg not in (None, "default") and s is None:
        s = _LegacyPG(
            pg,
            options.get("placement_group_bundle_index", -1),
            options.get("placement_group_capture_child_tasks"),
        )
    if s is None:
        ctx = current_task()
        inherited = ctx.extra.get("placement_group") if ctx else None
        if inherited and inherited.get("capture"):
            return {**inherited, "bundle_index": -1}
        return {}
    if s == "DEFAULT":
        return {}
    if s == "SPREAD":
        return {"type": "SPREAD"}
    kind = type(s).__name__
    if kind == "NodeAffinitySchedulingStrategy":
        return {"type": "node_affinity", "node_id": s.node_id, "soft": bool(s.soft)}
    if kind == "NodeLabelSchedulingStrategy":
        return {
            "type": "node_label",
            "hard": _label_wire(s.hard),
            "soft": _label_wire(s.soft),
        }
    if hasattr(s, "placement_group"):
        pg = s.placement_group
        if pg is None:
            return {}
        raw = s.placement_group_bundle_index
        index = -1 if raw is None else int(raw)
        if pg.is_empty:  # PlacementGroup.empty(): no group
            if index != -1:
                raise ValueError(
                    "If placement group is not set, the value of bundle index must be -1."
                )
            return {}
        if index >= len(pg.bundle_specs) or index < -1:
            raise ValueError(
                f"placement_group_bundle_index {index} is out of range: the group has "
                f"{len(pg.bundle_specs)} bundles (use -1 for any bundle)."
            )
        return {
            "type": "placement_group",
            "pg_id": pg.id.hex(),
            "bundle_index": index,
            "capture": bool(s.placement_group_capture_child_tasks),
        }
    raise NotImplementedError(
        f"scheduling_strategy={kind} is not supported by ember yet; use 'DEFAULT', "
        "'SPREAD', NodeAffinitySchedulingStrategy, PlacementGroupSchedulingStrategy "
        "or NodeLabelSchedulingStrategy."
    )


_OPERATORS = {
    "In": labels.IN,
    "NotIn": labels.NOT_IN,
    "Exists": labels.EXISTS,
    "DoesNotExist": labels.DOES_NOT_EXIST,
}


def _label_wire(expressions: list[Any]) -> list[list[object]]:
    """NodeLabelSchedulingStrategy's ``hard``/``soft`` expressions, in wire form."""
    return labels.to_wire(
        (
            e.key,
            _OPERATORS[type(e.operator).__name__],
            tuple(getattr(e.operator, "values", ())),
        )
        for e in expressions
    )


class _LegacyPG:
    """The deprecated ``placement_group=`` options, as a strategy object."""

    def __init__(self, pg: Any, index: int, capture: Any) -> None:
        self.placement_group = pg
        self.placement_group_bundle_index = index
        self.placement_group_capture_child_tasks = capture


def placed_resources(
    resources: dict[str, float], strategy: dict[str, Any]
) -> dict[str, float]:
    """Resources rewritten to draw on a placement group's bundle, if scheduled into one."""
    if strategy.get("type") != "placement_group":
        return resources
    from ember.scheduler.placement import request_in_bundle

    return request_in_bundle(strategy["pg_id"], strategy["bundle_index"], resources)
