"""``list_workers`` and ``get_worker``: rows from the control service's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.util.state.common import (
    DEFAULT_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    get_resource,
    list_resource,
)
from ember.util.state.schemas import WorkerState


def list_workers(
    address: str | None = None,
    filters: Sequence[tuple[str, str, Any]] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[WorkerState]:
    """The cluster's worker and driver processes (alive and exited) (filters, limit and detail as ``list_tasks``)."""
    return list_resource(
        "workers",
        address=address,
        filters=filters,
        limit=limit,
        timeout=timeout,
        detail=detail,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )


def get_worker(
    id: str,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> WorkerState | None:
    """The worker with hex id ``id``, with every column; None if it is not known."""
    rows = get_resource("workers", id, address=address, timeout=timeout)
    return rows[0] if rows else None
