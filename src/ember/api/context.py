"""get_runtime_context(), and cluster information: nodes and resources."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from ember.api.runtime_access import runtime
from ember.common.ids import ActorID, JobID, NodeID, TaskID, WorkerID
from ember.runtime import task_context


class RuntimeContext:
    """What this driver or worker is: job, node, worker, task, actor, namespace."""

    def get_job_id(self) -> str:
        return self.job_id.hex()

    @property
    def job_id(self) -> JobID:
        ctx = task_context.get()
        if ctx is not None and ctx.job_id:
            return JobID(ctx.job_id)
        return JobID(runtime().job_id)

    def get_node_id(self) -> str:
        return self.node_id.hex()

    @property
    def node_id(self) -> NodeID:
        return NodeID(runtime().node_id)

    def get_worker_id(self) -> str:
        return WorkerID(runtime().worker_id).hex()

    def get_task_id(self) -> str | None:
        ctx = task_context.get()
        if ctx is None or not ctx.task_id:
            return None
        return TaskID(ctx.task_id).hex()

    @property
    def task_id(self) -> TaskID | None:
        ctx = task_context.get()
        return None if ctx is None or not ctx.task_id else TaskID(ctx.task_id)

    def get_actor_id(self) -> str | None:
        aid = self.actor_id
        return None if aid is None else aid.hex()

    @property
    def actor_id(self) -> ActorID | None:
        ctx = task_context.get()
        aid = (ctx.actor_id if ctx is not None else b"") or (
            task_context.process_actor.get("actor_id")
        )
        return None if not aid else ActorID(aid)

    def get_actor_name(self) -> str | None:
        return task_context.process_actor.get("name") or None

    def get_task_name(self) -> str | None:
        """The task's name (its ``name`` option, or the function's; ``Cls.method``)."""
        ctx = task_context.get()
        return (ctx.name or None) if ctx is not None and ctx.task_id else None

    def get_task_function_name(self) -> str | None:
        """``module.qualname`` of the running function or method, or None."""
        ctx = task_context.get()
        if ctx is None or not ctx.task_id:
            return None
        fn = ctx.extra.get("function")
        if fn is None:
            cls = task_context.process_actor.get("class")
            if cls is None or not ctx.actor_id or "." not in ctx.name:
                return None
            method = ctx.name.rsplit(".", 1)[1]
            return f"{cls.__module__}.{cls.__qualname__}.{method}"
        fn = getattr(fn, "__func__", fn)
        return f"{fn.__module__}.{fn.__qualname__}"

    @property
    def current_actor(self) -> Any:
        """A handle to the actor this code runs in (RuntimeError elsewhere)."""
        aid = self.actor_id
        if aid is None:
            raise RuntimeError("This method is only available in an actor.")
        ctx = task_context.get()
        bound = ctx.extra.get("function") if ctx is not None else None
        owner = getattr(bound, "__self__", None)
        cls = (
            type(owner)
            if owner is not None
            else task_context.process_actor.get("class")
        )
        from ember.api.actor import ActorHandle, _method_meta

        methods = _method_meta(cls) if cls is not None else {}
        name = cls.__name__ if cls is not None else (ctx.actor_class if ctx else "")
        retries = task_context.process_actor.get("max_task_retries", 0)
        return ActorHandle(aid.binary(), name, methods, retries)

    def _placement(self) -> dict[str, Any] | None:
        ctx = task_context.get()
        pg = ctx.extra.get("placement_group") if ctx is not None else None
        return pg or task_context.process_actor.get("placement_group") or None

    def get_placement_group_id(self) -> str | None:
        """The hex id of the placement group this task or actor runs in, or None."""
        pg = self._placement()
        return None if pg is None else str(pg["pg_id"])

    @property
    def current_placement_group_id(self) -> Any:
        from ember.api.placement_group import PlacementGroupID

        pg_id = self.get_placement_group_id()
        return (
            PlacementGroupID.nil()
            if pg_id is None
            else PlacementGroupID.from_hex(pg_id)
        )

    @property
    def should_capture_child_tasks_in_placement_group(self) -> bool:
        pg = self._placement()
        return bool(pg and pg.get("capture"))

    def is_canceled(self) -> bool:
        """Whether cancellation of the running task was requested (in a task only)."""
        ctx = task_context.get()
        if ctx is None or not ctx.task_id:
            raise RuntimeError(
                "This method is only available when the process is a worker."
            )
        if task_context.process_actor.get("is_async"):
            raise RuntimeError("This method is not supported in an async actor.")
        return ctx.task_id in task_context.cancel_requested

    @property
    def gcs_address(self) -> str:
        """The control service's address (Ray's GCS address)."""
        info = runtime().context_info()
        return str(info.get("gcs_address") or info.get("address", ""))

    @property
    def runtime_env(self) -> dict[str, Any]:
        """The runtime_env of the current job, task or actor (package URIs in
        place of local folders, as Ray shows them)."""
        ctx = task_context.get()
        env = ctx.extra.get("runtime_env") if ctx is not None else None
        if env is None:  # the driver: its init(runtime_env=...)
            env = getattr(runtime(), "job_runtime_env", None)
        return {k: v for k, v in (env or {}).items() if v}

    def get_runtime_env_string(self) -> str:
        """The runtime_env as JSON (``"{}"`` when there is none)."""
        return json.dumps(self.runtime_env)

    def get_session_name(self) -> str:
        """The session folder's name (``session_<time>_<pid>``; ``""`` in local mode)."""
        session_dir = runtime().context_info().get("session_dir") or ""
        return os.path.basename(session_dir.rstrip("/"))

    def get_temp_dir(self) -> str:
        """The folder holding the session folders (``""`` in local mode)."""
        session_dir = runtime().context_info().get("session_dir") or ""
        return os.path.dirname(session_dir.rstrip("/"))

    def get_resource_ids(self) -> dict[str, list[str]]:
        """Deprecated alias of :meth:`get_accelerator_ids` (as in Ray)."""
        warnings.warn(
            "Use get_accelerator_ids() instead", DeprecationWarning, stacklevel=2
        )
        return self.get_accelerator_ids()

    def get_node_labels(self) -> dict[str, str]:
        """The labels of the node this process runs on (``ray.io/node-id`` at least)."""
        node_id = self.get_node_id()
        for n in runtime().nodes():
            if n.get("NodeID") == node_id and n.get("Labels"):
                return dict(n["Labels"])
        return {"ray.io/node-id": node_id}

    @property
    def namespace(self) -> str:
        return runtime().namespace

    def get_assigned_resources(self) -> dict[str, float]:
        ctx = task_context.get()
        return dict(ctx.resources) if ctx is not None else {}

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        """Accelerator ids assigned to this task or actor, per kind (GPU only here)."""
        ctx = task_context.get()
        if ctx is None or not ctx.resources.get("GPU"):
            return {"GPU": []}
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return {"GPU": [g.strip() for g in gpus.split(",") if g.strip()]}

    @property
    def was_current_actor_reconstructed(self) -> bool:
        return bool(task_context.process_actor.get("restarted"))

    def get(self) -> dict[str, Any]:
        return {
            "job_id": self.job_id,
            "node_id": self.node_id,
            "namespace": self.namespace,
            "task_id": self.task_id,
            "actor_id": self.actor_id,
        }


_context = RuntimeContext()


def get_runtime_context() -> RuntimeContext:
    """Information about the current driver, task or actor."""
    return _context


def nodes() -> list[dict[str, Any]]:
    """Every node of the cluster, alive or dead, as Ray reports them."""
    return runtime().nodes()


def cluster_resources() -> dict[str, float]:
    """Total resources of the live nodes."""
    return runtime().cluster_resources()


def available_resources() -> dict[str, float]:
    """Resources of the live nodes not currently in use (keys at zero are left out)."""
    return runtime().available_resources()


def list_named_actors(all_namespaces: bool = False) -> list[Any]:
    """Names of live named actors (dicts with namespace if ``all_namespaces``)."""
    if not isinstance(all_namespaces, bool):
        raise TypeError(
            f"list_named_actors() 'all_namespaces' must be a bool, got "
            f"{type(all_namespaces).__name__}: {all_namespaces!r}"
        )
    return runtime().list_named_actors(all_namespaces)
