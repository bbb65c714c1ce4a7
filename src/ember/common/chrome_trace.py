"""Task rows as a Chrome trace: one complete event per task attempt that ran.

The JSON array format of Chrome's trace viewer (chrome://tracing, Perfetto):
one complete event (``"ph": "X"``, start ``ts`` and ``dur`` in microseconds)
per task attempt with a start and an end, in the process row (``pid``) of its
node and the thread row (``tid``) of its worker, as ``ray timeline`` draws
them; metadata events (``"ph": "M"``) name the rows.  A failed attempt is
drawn in red and its error type is in ``args``.  Pure: ``ember timeline``
(``util/state/timeline.py``) and ``ember.timeline()`` (``api/extras.py``)
fetch the rows.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: trace viewer colour names
_COLOURS = {"FINISHED": "rail_response", "FAILED": "terrible"}


def chrome_trace(tasks: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The trace events for task rows (dicts with ``TaskState``'s detail columns)."""
    events: list[dict[str, Any]] = []
    pids: dict[str, int] = {}
    tids: dict[tuple[int, str], int] = {}
    for t in tasks:
        start, end = t.get("start_time_ms"), t.get("end_time_ms")
        if start is None or end is None or not t.get("worker_id"):
            continue  # never ran, or still running
        node = t.get("node_id") or "unknown"
        pid = pids.get(node)
        if pid is None:
            pid = pids[node] = len(pids) + 1
            events.append(_meta("process_name", pid, 0, f"Node {node}"))
        tid = tids.get((pid, t["worker_id"]))
        if tid is None:
            tid = tids[(pid, t["worker_id"])] = len(tids) + 1
            label = f"worker:{t['worker_id']} (pid {t.get('worker_pid')})"
            events.append(_meta("thread_name", pid, tid, label))
        name = t.get("name") or t.get("func_or_class_name") or "task"
        events.append(
            {
                "cat": "task",
                "name": f"task::{name}",
                "ph": "X",
                "pid": pid,
                "tid": tid,
                "ts": int(start) * 1000,
                "dur": max(int(end) - int(start), 0) * 1000,
                "cname": _COLOURS.get(t.get("state") or "", "generic_work"),
                "args": {
                    "task_id": t.get("task_id"),
                    "attempt_number": t.get("attempt_number"),
                    "type": t.get("type"),
                    "state": t.get("state"),
                    "actor_id": t.get("actor_id"),
                    "job_id": t.get("job_id"),
                    "error_type": t.get("error_type"),
                },
            }
        )
    return events


def _meta(kind: str, pid: int, tid: int, label: str) -> dict[str, Any]:
    return {"name": kind, "ph": "M", "pid": pid, "tid": tid, "args": {"name": label}}
