"""The JSON rows of the dashboard's API, made from the cluster's records (pure functions).

Each function takes what the control service or a node answered (protocol
structs, the state API's row dicts) and returns the row that
``/work/tools/b5/api.md`` (docs/seams/dashboard.md) names: snake_case keys,
epoch milliseconds, bytes, hex ids, ``None`` for what is not known.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import Any

from ember.dashboard.history import Point
from ember.protocol.messages import NodeInfo, PlacementGroupInfo, ProcessStats


def _ms(seconds: float) -> int | None:
    return int(seconds * 1000) if seconds else None


def node_row(n: NodeInfo, p: Point | None, num_workers: int) -> dict[str, Any]:
    """A node with its last sampled figures (zeros before the first sample)."""
    return {
        "node_id": n.node_id.hex(),
        "node_ip": n.ip,
        "state": "ALIVE" if n.alive else "DEAD",
        "is_head": n.is_head,
        "hostname": n.hostname or n.ip,
        "cpu_percent": p.cpu_percent if p else 0.0,
        "mem_total": p.mem_total if p else 0,
        "mem_used": p.mem_used if p else 0,
        "disk_total": p.disk_total if p else 0,
        "disk_used": p.disk_used if p else 0,
        "net_rx_bps": p.net_rx_bps if p else 0.0,
        "net_tx_bps": p.net_tx_bps if p else 0.0,
        "object_store_total": p.object_store_total if p else n.object_store_bytes,
        "object_store_used": p.object_store_used if p else n.store_used,
        "object_store_spilled": p.object_store_spilled if p else 0,
        "resources_total": dict(n.resources),
        "resources_available": dict(n.available) if n.alive else {},
        "num_workers": num_workers,
        "start_time": _ms(n.start_time),
        "death_reason": None if n.alive else (n.death_reason or None),
    }


def resource_sums(
    nodes: Iterable[NodeInfo],
) -> tuple[dict[str, float], dict[str, float]]:
    """(totals, available) over the alive nodes, without placement-group resources."""
    total: dict[str, float] = {}
    free: dict[str, float] = {}
    for n in nodes:
        if not n.alive:
            continue
        for k, v in n.resources.items():
            if "_group_" not in k:
                total[k] = total.get(k, 0.0) + v
        for k, v in n.available.items():
            if "_group_" not in k:
                free[k] = free.get(k, 0.0) + v
    return total, free


def count_by(rows: Iterable[dict[str, Any]], key: str) -> dict[str, int]:
    return dict(Counter(str(r.get(key)) for r in rows))


def task_row(r: dict[str, Any]) -> dict[str, Any]:
    """A task attempt (a state API row with detail) for ``/api/tasks``."""
    return {
        "task_id": r.get("task_id"),
        "attempt_number": r.get("attempt_number", 0),
        "name": r.get("name"),
        "state": r.get("state"),
        "job_id": r.get("job_id"),
        "actor_id": r.get("actor_id"),
        "node_id": r.get("node_id"),
        "worker_id": r.get("worker_id"),
        "type": r.get("type"),
        "start_time": r.get("start_time_ms"),
        "end_time": r.get("end_time_ms"),
        "error_type": r.get("error_type"),
        "error_message": r.get("error_message"),
    }


def task_summary(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Task attempts counted by name and state, and by state."""
    by_name: dict[str, Counter[str]] = {}
    by_state: Counter[str] = Counter()
    for r in rows:
        name, state = (
            str(r.get("func_or_class_name") or r.get("name")),
            str(r.get("state")),
        )
        by_name.setdefault(name, Counter())[state] += 1
        by_state[state] += 1
    return {
        "by_name": {k: dict(v) for k, v in sorted(by_name.items())},
        "by_state": dict(by_state),
    }


def _death_cause(r: dict[str, Any]) -> str | None:
    cause = r.get("death_cause")
    if not isinstance(cause, dict):
        return None
    ctx = cause.get("actor_died_error_context") or {}
    message = ctx.get("error_message") if isinstance(ctx, dict) else None
    return str(message) if message else None


def actor_row(r: dict[str, Any]) -> dict[str, Any]:
    """An actor (a state API row with detail) for ``/api/actors``."""
    return {
        "actor_id": r.get("actor_id"),
        "class_name": r.get("class_name"),
        "name": r.get("name") or "",
        "state": r.get("state"),
        "node_id": r.get("node_id"),
        "pid": r.get("pid") or None,
        "num_restarts": r.get("num_restarts") or 0,
        "job_id": r.get("job_id"),
        "death_cause": _death_cause(r) if r.get("state") == "DEAD" else None,
    }


def placement_group_row(g: PlacementGroupInfo) -> dict[str, Any]:
    return {
        "placement_group_id": g.pg_id.hex(),
        "name": g.name,
        "state": g.state,
        "strategy": g.strategy,
        "bundles": [dict(b) for b in g.bundles],
        "bundle_nodes": [b.hex() if b else None for b in g.bundle_nodes],
        "job_id": g.job_id.hex(),
    }


def job_row(r: dict[str, Any]) -> dict[str, Any]:
    """A driver job (a state API ``jobs`` row with detail) for ``/api/cluster``."""
    info = r.get("driver_info") or {}
    pid = info.get("pid") if isinstance(info, dict) else None
    try:
        driver_pid: int | None = int(pid) if pid not in (None, "") else None
    except (TypeError, ValueError):
        driver_pid = None
    return {
        "job_id": r.get("job_id"),
        "status": r.get("status"),
        "entrypoint": r.get("entrypoint") or "",
        "start_time": r.get("start_time"),
        "end_time": r.get("end_time"),
        "driver_pid": driver_pid,
        "submission_id": r.get("submission_id"),
    }


def recent_jobs(
    rows: Iterable[dict[str, Any]], limit: int = 10
) -> list[dict[str, Any]]:
    """The ``limit`` most recently started jobs, newest first."""
    jobs = [job_row(r) for r in rows]
    jobs.sort(key=lambda j: j["start_time"] or 0, reverse=True)
    return jobs[:limit]


def worker_rows(
    processes: Iterable[ProcessStats],
    cpu: dict[int, float],
    seen: Iterable[dict[str, Any]],
    actor_classes: dict[int, str],
    running: dict[str, str],
) -> list[dict[str, Any]]:
    """A node's workers and drivers: its live processes, then the dead ones it had.

    ``processes`` and ``cpu`` (pid -> percent) come from the node's
    ``node.get_system_stats``; ``seen`` are the state API's worker rows of the
    node (workers that reported task events, drivers); ``actor_classes``:
    pid -> class of the actor it hosts; ``running``: worker id -> the name of
    the task it runs.
    """
    by_pid = {int(w.get("pid") or 0): w for w in seen}
    out = []
    live = set()
    for p in processes:
        w = by_pid.get(p.pid, {})
        wid = p.worker_id.hex() if p.worker_id else w.get("worker_id")
        live.add(p.pid)
        out.append(
            {
                "worker_id": wid,
                "pid": p.pid,
                "type": "DRIVER" if p.is_driver else "WORKER",
                "cpu_percent": cpu.get(p.pid, 0.0),
                "rss": p.rss,
                "actor_class": actor_classes.get(p.pid),
                "task_name": running.get(str(wid)) if wid else None,
                "alive": p.alive,
            }
        )
    for pid, w in by_pid.items():
        if pid in live or w.get("is_alive"):
            continue
        out.append(
            {
                "worker_id": w.get("worker_id"),
                "pid": pid,
                "type": w.get("worker_type") or "WORKER",
                "cpu_percent": 0.0,
                "rss": 0,
                "actor_class": actor_classes.get(pid),
                "task_name": None,
                "alive": False,
            }
        )
    out.sort(key=lambda w: (not w["alive"], w["type"] != "DRIVER", w["pid"]))
    return out
