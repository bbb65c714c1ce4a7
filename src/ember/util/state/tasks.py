"""``list_tasks``, ``get_task`` and ``summarize_tasks``: task attempts from task events."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.util.state.common import (
    DEFAULT_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    MAX_LIMIT,
    get_resource,
    list_resource,
)
from ember.util.state.schemas import TaskState

#: how summaries count each task type
_TOTALS = {
    "NORMAL_TASK": "total_tasks",
    "ACTOR_CREATION_TASK": "total_actor_scheduled",
    "ACTOR_TASK": "total_actor_tasks",
}


def list_tasks(
    address: str | None = None,
    filters: Sequence[tuple[str, str, Any]] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[TaskState]:
    """The cluster's task attempts (one row per attempt of each task and actor call).

    ``filters``: ``(column, "=" or "!=", value)`` triples, ANDed, strings
    compared case-insensitively, e.g. ``[("state", "=", "FAILED")]``.  At most
    ``limit`` rows come back.  ``detail`` adds the detail columns (times, events,
    the error message, resources).  Raises ``RayStateApiException`` if the
    cluster dropped some attempts (it keeps the last ``EMBER_TASK_EVENTS_MAX``),
    unless ``raise_on_missing_output=False``.
    """
    return list_resource(
        "tasks",
        address=address,
        filters=filters,
        limit=limit,
        timeout=timeout,
        detail=detail,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )


def get_task(
    id: Any,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> TaskState | list[TaskState] | None:
    """The attempt of task ``id`` (a hex id, or an ``ObjectRef`` it returned), with
    every column; a list when it ran more than once; None if it is not known."""
    task_id = id if isinstance(id, str) else id.task_id().hex()
    rows = get_resource("tasks", task_id, address=address, timeout=timeout)
    if not rows:
        return None
    return rows[0] if len(rows) == 1 else rows


def summary_by_func_name(tasks: Sequence[Any]) -> dict[str, Any]:
    """Ray's ``TaskSummaries`` (by function or class name) of ``tasks`` as a dict."""
    summary: dict[str, dict[str, Any]] = {}
    totals = dict.fromkeys(_TOTALS.values(), 0)
    for t in tasks:
        key = t["name"] or t["func_or_class_name"]
        entry = summary.setdefault(
            key, {"func_or_class_name": key, "type": t["type"], "state_counts": {}}
        )
        counts = entry["state_counts"]
        counts[t["state"]] = counts.get(t["state"], 0) + 1
        total = _TOTALS.get(t["type"])
        if total is not None:
            totals[total] += 1
    return {"summary": summary, **totals, "summary_by": "func_name"}


def summarize_tasks(
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """Task attempts counted by state per function (or class) name, as Ray's:
    ``{"cluster": {"summary": {name: {...}}, "total_tasks": n, ...}}``."""
    tasks = list_resource(
        "tasks",
        address=address,
        limit=MAX_LIMIT,
        timeout=timeout,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )
    return {"cluster": summary_by_func_name(tasks)}
