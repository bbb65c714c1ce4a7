"""get_runtime_context(), and cluster information: nodes and resources."""

from __future__ import annotations

import os
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

    @property
    def namespace(self) -> str:
        return runtime().namespace

    def get_assigned_resources(self) -> dict[str, float]:
        ctx = task_context.get()
        return dict(ctx.resources) if ctx is not None else {}

    def get_accelerator_ids(self) -> dict[str, list[str]]:
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES", "")
        return {"GPU": [g for g in gpus.split(",") if g]}

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
