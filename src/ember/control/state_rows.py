"""The state API's rows, made by the control service from its tables (``control.list_*``).

Every resource of ``ember.util.state`` is answered here as a list of dicts
with Ray's column names (ids in hex, times in ms since the epoch), filtered
and cut to ``limit`` on this side.  The client checks the filters against
its schema first (known, filterable columns; values converted to the
columns' types), and keeps the base or the detail columns.

Workers are known from their task-event batches (every core worker sends
one when it starts, then one per second while it records events): the
connection a batch came on tells when the worker is gone.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from ember.common.state_filters import Filter, select
from ember.control.actor_record import ActorRecord
from ember.control.task_events import TaskEventTable
from ember.protocol.messages import (
    ListStateReply,
    ListStateRequest,
    NodeInfo,
    PlacementGroupInfo,
    TaskEventsBatch,
)
from ember.rpc.connection import Connection

#: the column each resource's rows are sorted by (as Ray sorts them, before the limit)
_ID_COLUMNS = {
    "actors": "actor_id",
    "nodes": "node_id",
    "jobs": "job_id",
    "workers": "worker_id",
    "placement_groups": "placement_group_id",
}

#: ember's actor states as Ray names them
_ACTOR_STATES = {"PENDING": "PENDING_CREATION"}


def _hex_or_none(b: bytes) -> str | None:
    return b.hex() if b else None


def _ms(t: float) -> int | None:
    return int(t * 1000) if t else None


class WorkersSeen:
    """Core workers, from their task-event batches; dead once their connection closes."""

    def __init__(self) -> None:
        self.workers: dict[bytes, dict[str, Any]] = {}
        self._conns: dict[bytes, Connection] = {}

    def saw(self, conn: Connection, batch: TaskEventsBatch) -> None:
        wid = batch.worker_id
        w = self.workers.get(wid)
        if w is None:
            w = self.workers[wid] = {
                "worker_id": wid.hex(),
                "is_alive": True,
                "worker_type": batch.worker_type,
                "exit_type": None,
                "node_id": batch.node_id.hex(),
                "ip": batch.ip,
                "pid": batch.pid,
                "exit_detail": None,
                "worker_launch_time_ms": None,
                "worker_launched_time_ms": None,
                "start_time_ms": int(time.time() * 1000),
                "end_time_ms": None,
                "debugger_port": None,
                "num_paused_threads": None,
                "job_id": "",
            }
        if batch.job_id:
            w["job_id"] = batch.job_id.hex()
        if self._conns.get(wid) is not conn:
            self._conns[wid] = conn
            w["is_alive"], w["end_time_ms"] = True, None
            conn.on_close(lambda c: self._gone(wid, c))

    def _gone(self, wid: bytes, conn: Connection) -> None:
        if self._conns.get(wid) is not conn:
            return  # it reconnected (a restarted control service)
        del self._conns[wid]
        w = self.workers[wid]
        w["is_alive"], w["end_time_ms"] = False, int(time.time() * 1000)
        w["exit_type"] = (
            "INTENDED_SYSTEM_EXIT" if w["worker_type"] == "DRIVER" else None
        )

    def driver_of(self, job_hex: str) -> dict[str, Any] | None:
        for w in self.workers.values():
            if w["worker_type"] == "DRIVER" and w["job_id"] == job_hex:
                return w
        return None


def actor_row(rec: ActorRecord) -> dict[str, Any]:
    info, spec = rec.info, rec.spec
    node = rec.node_id or (info.address.node_id if info.address else b"")
    pg = spec.scheduling.get("pg_id") if isinstance(spec.scheduling, dict) else None
    death = None
    if info.state == "DEAD":
        death = {
            "actor_died_error_context": {
                "error_message": info.death_cause,
                "actor_id": info.actor_id.hex(),
                "class_name": info.class_name,
                "pid": info.pid,
                "name": info.name,
                "ray_namespace": info.namespace,
            }
        }
    return {
        "actor_id": info.actor_id.hex(),
        "class_name": info.class_name,
        "state": _ACTOR_STATES.get(info.state, info.state),
        "job_id": spec.job_id.hex(),
        "name": info.name,
        "node_id": _hex_or_none(node),
        "pid": info.pid,
        "ray_namespace": info.namespace,
        "serialized_runtime_env": "{}",
        "required_resources": dict(spec.resources),
        "death_cause": death,
        "is_detached": spec.detached,
        "placement_group_id": pg or None,
        "repr_name": "",
        "num_restarts": rec.restarts,
        "num_restarts_due_to_lineage_reconstruction": 0,
        "num_restarts_due_to_node_preemption": 0,
        "call_site": None,
        "label_selector": {},
        "fallback_strategy": None,
    }


def node_row(n: NodeInfo) -> dict[str, Any]:
    return {
        "node_id": n.node_id.hex(),
        "node_ip": n.ip,
        "is_head_node": n.is_head,
        "state": "ALIVE" if n.alive else "DEAD",
        "state_message": None if n.alive else (n.death_reason or None),
        "node_name": n.ip,
        "resources_total": dict(n.resources),
        "labels": dict(n.labels),
        "start_time_ms": _ms(n.start_time),
        "end_time_ms": None,
    }


def placement_group_row(g: PlacementGroupInfo) -> dict[str, Any]:
    nodes = list(g.bundle_nodes)
    bundles = [
        {
            "bundle_id": f"{g.pg_id.hex()}_{i}",
            "node_id": nodes[i].hex() if i < len(nodes) and nodes[i] else None,
            "unit_resources": dict(b),
        }
        for i, b in enumerate(g.bundles)
    ]
    return {
        "placement_group_id": g.pg_id.hex(),
        "name": g.name,
        "creator_job_id": g.job_id.hex(),
        "state": g.state,
        "bundles": bundles,
        "is_detached": g.detached,
        "stats": {
            "scheduling_state": "FINISHED" if g.state == "CREATED" else g.state,
        },
        "topology_strategy": {},
        "topology_assignments": {},
    }


def job_row(job_id: bytes, job: dict[str, Any], workers: WorkersSeen) -> dict[str, Any]:
    wid = job.get("worker_id") or b""
    driver = workers.workers.get(wid) if wid else None
    driver = driver or workers.driver_of(job_id.hex())
    return {
        "type": "DRIVER",
        "job_id": job_id.hex(),
        "submission_id": None,
        "driver_info": {
            "id": driver["worker_id"] if driver else "",
            "node_ip_address": driver["ip"] if driver else "",
            "pid": str(job.get("pid", "")),
        },
        "status": "RUNNING" if job.get("alive") else "SUCCEEDED",
        "entrypoint": job.get("entrypoint", ""),
        "message": None,
        "error_type": None,
        "start_time": _ms(job.get("start_time", 0.0)),
        "end_time": _ms(job.get("end_time", 0.0)),
        "metadata": {},
        "runtime_env": {},
        "driver_agent_http_address": None,
        "driver_node_id": driver["node_id"] if driver else None,
        "driver_exit_code": None,
    }


class StateQueries:
    """Serves ``control.add_task_events``, ``control.list_tasks`` and ``control.list_state``."""

    def __init__(
        self,
        tasks: TaskEventTable,
        sources: dict[str, Callable[[], list[dict[str, Any]]]],
        workers: WorkersSeen,
    ) -> None:
        self.tasks = tasks
        self.workers = workers
        self._sources = {**sources, "workers": self._worker_rows}

    def _worker_rows(self) -> list[dict[str, Any]]:
        return list(self.workers.workers.values())

    def add_task_events(
        self, conn: Connection, req: TaskEventsBatch, bufs: Any
    ) -> None:
        self.workers.saw(conn, req)
        self.tasks.add(req)

    def list_tasks(
        self, conn: Connection, req: ListStateRequest, bufs: Any
    ) -> ListStateReply:
        return self.tasks.rows(_filters(req), _limit(req))

    def list_state(
        self, conn: Connection, req: ListStateRequest, bufs: Any
    ) -> ListStateReply:
        if req.resource == "tasks":
            return self.list_tasks(conn, req, bufs)
        source = self._sources.get(req.resource)
        if source is None:
            raise ValueError(
                f"Unknown state resource {req.resource!r}: one of tasks, "
                f"{', '.join(sorted(self._sources))}."
            )
        all_rows = source()
        order_by = _ID_COLUMNS.get(req.resource, "")
        rows, matched = select(all_rows, _filters(req), _limit(req), order_by)
        return ListStateReply(
            rows=rows,
            total=len(all_rows),
            num_after_truncation=len(all_rows),
            num_filtered=matched,
        )


def _filters(req: ListStateRequest) -> list[Filter]:
    return [(f.key, f.predicate, f.value) for f in req.filters]


def _limit(req: ListStateRequest) -> int:
    return max(0, req.limit)
