"""get_runtime_context(), and cluster information: nodes and resources."""

from __future__ import annotations

import os
from typing import Any

from ember.api.runtime_access import local_mode, worker
from ember.common.ids import ActorID, JobID, NodeID, TaskID, WorkerID
from ember.protocol.messages import Empty, ListNamedActorsRequest
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
        lm = local_mode()
        if lm is not None:
            return JobID(b"\x00\x00\x00\x01")
        return JobID(worker().job_id)

    def get_node_id(self) -> str:
        return self.node_id.hex()

    @property
    def node_id(self) -> NodeID:
        lm = local_mode()
        if lm is not None:
            return NodeID(b"\x00" * 16)
        return NodeID(worker().node_id)

    def get_worker_id(self) -> str:
        lm = local_mode()
        if lm is not None:
            return "00" * 16
        return WorkerID(worker().worker_id).hex()

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
        aid = task_context.process_actor.get("actor_id")
        return None if not aid else ActorID(aid).hex()

    @property
    def actor_id(self) -> ActorID | None:
        aid = task_context.process_actor.get("actor_id")
        return None if not aid else ActorID(aid)

    def get_actor_name(self) -> str | None:
        return task_context.process_actor.get("name") or None

    @property
    def namespace(self) -> str:
        lm = local_mode()
        if lm is not None:
            return str(lm.namespace)
        cw = worker()
        return cw.namespace

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


def _node_infos() -> list[Any]:
    cw = worker()
    reply, _ = cw.run(cw.control.call("control.get_nodes", Empty()))
    return list(reply.nodes)


def nodes() -> list[dict[str, Any]]:
    """Every node of the cluster, alive or dead, as Ray reports them."""
    lm = local_mode()
    if lm is not None:
        return [lm.node_record()]
    out = []
    for n in _node_infos():
        port = int(n.address.rpartition(":")[2]) if n.address.startswith("tcp:") else 0
        out.append(
            {
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
        )
    return out


def cluster_resources() -> dict[str, float]:
    """Total resources of the live nodes."""
    lm = local_mode()
    if lm is not None:
        return dict(lm.resources)
    total: dict[str, float] = {}
    for n in _node_infos():
        if n.alive:
            for k, v in n.resources.items():
                total[k] = total.get(k, 0.0) + v
    return total


def available_resources() -> dict[str, float]:
    """Resources of the live nodes not currently in use (keys at zero are left out)."""
    lm = local_mode()
    if lm is not None:
        return dict(lm.resources)
    total: dict[str, float] = {}
    for n in _node_infos():
        if n.alive:
            for k, v in n.available.items():
                total[k] = total.get(k, 0.0) + v
    return {k: v for k, v in total.items() if v > 0}


def list_named_actors(all_namespaces: bool = False) -> list[Any]:
    """Names of live named actors (dicts with namespace if ``all_namespaces``)."""
    cw = worker()
    reply, _ = cw.run(
        cw.control.call(
            "control.list_named_actors",
            ListNamedActorsRequest(
                namespace=cw.namespace, all_namespaces=all_namespaces
            ),
        )
    )
    if all_namespaces:
        return list(reply.actors)
    return [a["name"] for a in reply.actors]
