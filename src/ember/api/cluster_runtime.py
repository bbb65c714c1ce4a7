"""ClusterRuntime: the Runtime of a cluster process, a thin adapter over its CoreWorker.

It turns the API's already-validated calls into core-worker calls and control
service requests: the spec building of ``api/call_builder.py``, then
``cw.tasks`` / ``cw.actor_calls`` for submission, ``cw.objects`` for values and
``cw.control`` for the directory, cluster information and placement groups.

Hot paths (``submit_task``, ``call_actor``, ``get`` of ready objects) do the
same work as before this seam existed: ``get`` is the core worker's own
``Objects.get`` bound once at construction, so it costs no extra frame.
"""

from __future__ import annotations

from typing import Any

from ember.api.actor import ActorHandle
from ember.api.call_builder import (
    build_call,
    env_vars_of,
    export,
    placed_resources,
    resources_of,
    retry_exception_fields,
    runtime_env_of,
    strategy_of,
)
from ember.api.options import concurrency_groups_of, max_calls_of
from ember.api.runtime import ActorHandleLike
from ember.common.ids import object_id_for, random_id, task_id_of
from ember.protocol.messages import (
    ActorSpec,
    CreateActorRequest,
    Empty,
    GetNamedActorRequest,
    KillActorRequest,
    ListNamedActorsRequest,
    ObjRef,
    PlacementGroupInfo,
    PlacementGroupRequest,
)
from ember.rpc.errors import RemoteError
from ember.runtime.actor_submitter import ActorCall
from ember.runtime.core_worker import CoreWorker
from ember.runtime.object_ref import ObjectRef, ObjectRefGenerator
from ember.runtime.serialization import args_blob
from ember.runtime.submitter import PendingTask


class ClusterRuntime:
    """The Runtime of a driver or worker connected to a cluster."""

    def __init__(self, cw: CoreWorker, job_runtime_env: dict[str, Any] | None) -> None:
        self.cw = cw
        #: the driver's ``init(runtime_env=...)``; None in a worker (inherit the task's)
        self.job_runtime_env = job_runtime_env
        self.get = cw.objects.get
        self.placement_groups = ClusterPlacementGroups(cw)

    # identity -------------------------------------------------------------------
    @property
    def namespace(self) -> str:
        return self.cw.namespace

    @property
    def job_id(self) -> bytes:
        return self.cw.job_id

    @property
    def node_id(self) -> bytes:
        return self.cw.node_id

    @property
    def worker_id(self) -> bytes:
        return self.cw.worker_id

    @property
    def node_ip(self) -> str:
        return self.cw.node_ip

    # tasks ------------------------------------------------------------------------
    def submit_task(
        self,
        function: Any,
        export_cache: dict[int, bytes],
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        num_returns: int | str,
    ) -> Any:
        cw = self.cw
        streaming = num_returns in ("streaming", "dynamic")
        n = 1 if streaming else int(num_returns)
        key = export(cw, function, export_cache)
        spec, frames, return_oids, refs, arg_oids = build_call(
            cw, name, args, kwargs, n, streaming
        )
        spec.function_key = key
        spec.resources = resources_of(options, 1.0)
        spec.env_vars = env_vars_of(self.job_runtime_env, options)
        spec.runtime_env = runtime_env_of(self.job_runtime_env, options)
        spec.strategy = strategy_of(options)
        spec.resources = placed_resources(spec.resources, spec.strategy)
        spec.retry_exceptions, spec.retry_exception_types = retry_exception_fields(
            options.get("retry_exceptions", False)
        )
        spec.max_calls = max_calls_of(options)
        max_retries = options.get("max_retries")
        retries = 3 if max_retries is None else int(max_retries)
        task = PendingTask(spec, frames, return_oids, arg_oids, retries)
        dynamic = _dynamic_ref(cw, spec.task_id) if num_returns == "dynamic" else None
        gen = _generator(cw, spec.task_id) if streaming and dynamic is None else None
        cw.loop_thread.call_batched(cw.tasks.submit, task)
        if dynamic is not None:
            return dynamic
        if gen is not None:
            return gen
        if n == 0:
            return None
        if n == 1 and options.get("num_returns") in (None, 1):
            return refs[0]
        return refs

    # actors -----------------------------------------------------------------------
    def create_actor(
        self,
        cls: type,
        export_cache: dict[int, bytes],
        meta: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> ActorHandle:
        cw = self.cw
        key = export(cw, cls, export_cache)
        is_async = any(m["is_async"] for m in meta.values())
        max_conc = options.get("max_concurrency")
        if max_conc is None:
            max_conc = 1000 if is_async else 1
        ser, refs = args_blob(args, kwargs, lambda v: type(v).__name__ == "ObjectRef")
        namespace = options.get("namespace") or cw.namespace
        spec = ActorSpec(
            actor_id=random_id(),
            job_id=cw.job_id,
            class_key=key,
            class_name=cls.__name__,
            args=ser.data,
            arg_bufs=[bytes(memoryview(b).cast("B")) for b in ser.buffers],
            ref_args=[ObjRef(oid=r._id, owner=r._owner or cw.address) for r in refs],
            resources=placed_resources(
                resources_of(options, 0.0), strategy_of(options)
            ),
            name=options.get("name") or "",
            namespace=namespace,
            detached=options.get("lifetime") == "detached",
            max_restarts=int(options.get("max_restarts") or 0),
            max_task_retries=int(options.get("max_task_retries") or 0),
            max_concurrency=int(max_conc),
            is_async=is_async,
            env_vars=env_vars_of(self.job_runtime_env, options),
            owner=cw.address,
            methods=meta,
            scheduling=strategy_of(options),
            concurrency_groups=concurrency_groups_of(options),
            runtime_env=runtime_env_of(self.job_runtime_env, options),
        )
        # Keep argument refs (and refs inside arguments) alive for the actor's life.
        cw.refs.add_submitted(
            [r._id for r in refs] + [r._id for r in ser.contained],
            [r._owner for r in refs] + [r._owner for r in ser.contained],
        )
        request = CreateActorRequest(
            spec=spec, get_if_exists=bool(options.get("get_if_exists"))
        )
        info = self._control("control.create_actor", request)
        created = info.spec is None or info.spec.actor_id == spec.actor_id
        spec = info.spec or spec
        # get_if_exists found another actor: a handle as get_actor's (not counted)
        handle = ActorHandle(
            spec.actor_id,
            spec.class_name,
            spec.methods,
            spec.max_task_retries,
            counted=created,
        )
        if created and not spec.detached:
            # The actor (named or not, as in Ray) dies with its creator's last
            # handle here, unless one escaped (was pickled into a task, an actor
            # or an object): then it lives until its job ends, as we cannot see
            # the copies. Handles from get_actor do not count (as in Ray).
            cw.actor_handles.mark_collectable(spec.actor_id)
        return handle

    def call_actor(
        self,
        handle: ActorHandleLike,
        method: str,
        meta: dict[str, Any],
        options: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        cw = self.cw
        num_returns = options.get("num_returns", meta.get("num_returns", 1))
        streaming = num_returns in ("streaming", "dynamic")
        n = 1 if streaming else int(num_returns)
        spec, frames, return_oids, refs, arg_oids = build_call(
            cw, f"{handle._class_name}.{method}", args, kwargs, n, streaming
        )
        actor_id = handle._actor_id_bytes
        spec.actor_id = actor_id
        spec.method = method
        spec.concurrency_group = (
            options.get("concurrency_group") or meta.get("concurrency_group") or ""
        )
        retries = options.get("max_task_retries", meta.get("max_task_retries"))
        if retries is None:
            retries = handle._max_task_retries
        call = ActorCall(spec, frames, return_oids, arg_oids, int(retries))
        dynamic = _dynamic_ref(cw, spec.task_id) if num_returns == "dynamic" else None
        gen = _generator(cw, spec.task_id) if streaming and dynamic is None else None
        calls = cw.actor_calls
        if not calls.actors.get(actor_id):
            calls.state(actor_id, handle._class_name)
        if not calls.try_send_now(call):
            calls.hand_to_loop(call)
        if dynamic is not None:
            return dynamic
        if gen is not None:
            return gen
        if n == 0:
            return None
        if n == 1:
            return refs[0]
        return refs

    def get_actor(self, name: str, namespace: str | None) -> ActorHandle:
        ns = namespace if namespace is not None else self.cw.namespace
        request = GetNamedActorRequest(name=name, namespace=ns)
        spec = self._control("control.get_named_actor", request).spec
        # not counted: in Ray only the creator's handles (and copies of them)
        # keep a non-detached actor alive
        return ActorHandle(
            spec.actor_id,
            spec.class_name,
            spec.methods,
            spec.max_task_retries,
            counted=False,
        )

    def kill(self, handle: ActorHandleLike, no_restart: bool) -> None:
        request = KillActorRequest(
            actor_id=handle._actor_id_bytes, no_restart=no_restart
        )
        self._control("control.kill_actor", request)

    def list_named_actors(self, all_namespaces: bool) -> list[Any]:
        request = ListNamedActorsRequest(
            namespace=self.cw.namespace, all_namespaces=all_namespaces
        )
        actors = self._control("control.list_named_actors", request).actors
        if all_namespaces:
            return list(actors)
        return [a["name"] for a in actors]

    # objects ----------------------------------------------------------------------
    def put(self, value: Any) -> ObjectRef:
        return self.cw.objects.put(value)

    def wait(
        self,
        refs: list[ObjectRef],
        num_returns: int,
        timeout: float | None,
        fetch_local: bool,
    ) -> list[bool]:
        cw = self.cw
        return cw.run(cw.objects.wait(refs, num_returns, timeout))

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None:
        cw = self.cw
        tid = task_id_of(ref.binary())

        async def do() -> bool:
            # an actor call (ValueError for force=True), else a task
            return cw.actor_calls.cancel(tid, force, recursive) or cw.tasks.cancel(
                tid, force
            )

        cw.run(do())

    # cluster information ----------------------------------------------------------
    def _node_infos(self) -> list[Any]:
        return list(self._control("control.get_nodes", Empty()).nodes)

    def nodes(self) -> list[dict[str, Any]]:
        return [_node_record(n) for n in self._node_infos()]

    def cluster_resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for n in self._node_infos():
            if n.alive:
                for k, v in n.resources.items():
                    total[k] = total.get(k, 0.0) + v
        return total

    def available_resources(self) -> dict[str, float]:
        total: dict[str, float] = {}
        for n in self._node_infos():
            if n.alive:
                for k, v in n.available.items():
                    total[k] = total.get(k, 0.0) + v
        return {k: v for k, v in total.items() if v > 0}

    def context_info(self) -> dict[str, Any]:
        cw = self.cw
        return {
            "node_ip_address": cw.node_ip,
            "address": cw.control_address,
            "session_dir": cw.session_dir,
            "node_id": cw.node_id.hex(),
            "webui_url": "",
            "gcs_address": cw.control_address,
        }

    def shutdown(self) -> None:
        if self.cw.is_driver:
            self.cw.shutdown()

    def _control(self, method: str, request: Any) -> Any:
        return _control_call(self.cw, method, request)


class ClusterPlacementGroups:
    """Placement groups through the control service."""

    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw

    def create(
        self,
        pg_id: bytes,
        bundles: list[dict[str, float]],
        strategy: str,
        name: str,
        detached: bool,
    ) -> None:
        cw = self.cw
        info = PlacementGroupInfo(
            pg_id=pg_id,
            bundles=bundles,
            strategy=strategy,
            name=name,
            namespace=cw.namespace,
            job_id=cw.job_id,
            detached=detached,
        )
        _control_call(cw, "control.create_placement_group", info)

    def info(self, pg_id: bytes) -> PlacementGroupInfo:
        request = PlacementGroupRequest(pg_id=pg_id)
        return _control_call(self.cw, "control.get_placement_group", request, True)

    def info_by_name(self, name: str) -> PlacementGroupInfo:
        request = PlacementGroupRequest(name=name, namespace=self.cw.namespace)
        return _control_call(self.cw, "control.get_placement_group", request, True)

    def wait(self, pg_id: bytes, timeout_s: float) -> bool:
        request = PlacementGroupRequest(pg_id=pg_id, timeout_s=timeout_s)
        return bool(
            _control_call(self.cw, "control.wait_placement_group", request).ready
        )

    def remove(self, pg_id: bytes) -> None:
        request = PlacementGroupRequest(pg_id=pg_id)
        _control_call(self.cw, "control.remove_placement_group", request)

    def list(self) -> list[PlacementGroupInfo]:
        reply = _control_call(self.cw, "control.list_placement_groups", Empty())
        return list(reply.groups)


def _control_call(
    cw: CoreWorker, method: str, request: Any, any_error_is_value: bool = False
) -> Any:
    """One control-service call; a ValueError it raised is raised here as one."""
    try:
        reply, _ = cw.run(cw.control.call(method, request))
    except RemoteError as err:
        if any_error_is_value or err.is_a(ValueError):
            raise ValueError(err.remote_message) from None
        raise
    return reply


def _node_record(n: Any) -> dict[str, Any]:
    port = int(n.address.rpartition(":")[2]) if n.address.startswith("tcp:") else 0
    return {
        "NodeID": n.node_id.hex(),
        "Alive": n.alive,
        "alive": n.alive,
        "NodeManagerAddress": n.ip,
        "NodeManagerHostname": n.hostname,
        "NodeManagerPort": port,
        "ObjectManagerPort": port,
        "NodeName": n.ip,
        "ObjectStoreSocketName": n.unix,
        "RayletSocketName": n.unix,
        "MetricsExportPort": 0,
        "Resources": dict(n.resources) if n.alive else {},
        "Labels": dict(n.labels),
        "IsHeadNode": n.is_head,
        "DeathReason": 0 if n.alive else 1,
        "DeathReasonMessage": n.death_reason,
    }


def _generator(cw: CoreWorker, task_id: bytes) -> ObjectRefGenerator:
    """The generator of a streaming call, made before the call is submitted."""
    return ObjectRefGenerator(cw.generators.start(task_id), cw.generators)


def _dynamic_ref(cw: CoreWorker, task_id: bytes) -> ObjectRef:
    """The one ref of a ``num_returns="dynamic"`` call (its items stream to us):
    its value becomes a ``DynamicObjectRefGenerator`` when the stream ends."""
    oid = object_id_for(task_id, 0)
    cw.objects.add_pending(oid)
    ref = ObjectRef(oid, cw.address)
    cw.generators.collect(task_id, oid)
    return ref
