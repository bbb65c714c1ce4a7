"""``list_actors``, ``get_actor`` and ``summarize_actors``: the control service's actors."""

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
from ember.util.state.schemas import ActorState


def list_actors(
    address: str | None = None,
    filters: Sequence[tuple[str, str, Any]] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[ActorState]:
    """The cluster's actors, alive or dead (filters, limit and detail as ``list_tasks``)."""
    return list_resource(
        "actors",
        address=address,
        filters=filters,
        limit=limit,
        timeout=timeout,
        detail=detail,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )


def get_actor(
    id: str,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> ActorState | None:
    """The actor with hex id ``id``, with every column; None if it is not known."""
    rows = get_resource("actors", id, address=address, timeout=timeout)
    return rows[0] if rows else None


def summarize_actors(
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """Actors counted by state per class, as Ray's:
    ``{"cluster": {"summary": {cls: {...}}, "total_actors": n, "summary_by": "class"}}``."""
    actors = list_resource(
        "actors",
        address=address,
        limit=MAX_LIMIT,
        timeout=timeout,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )
    summary: dict[str, dict[str, Any]] = {}
    for a in actors:
        entry = summary.setdefault(
            a.class_name, {"class_name": a.class_name, "state_counts": {}}
        )
        entry["state_counts"][a.state] = entry["state_counts"].get(a.state, 0) + 1
    return {
        "cluster": {
            "summary": summary,
            "total_actors": len(actors),
            "summary_by": "class",
        }
    }
