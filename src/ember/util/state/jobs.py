"""``list_jobs`` and ``get_job``: rows from the control service's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.util.state.common import (
    DEFAULT_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    get_resource,
    list_resource,
)
from ember.util.state.schemas import JobState


def list_jobs(
    address: str | None = None,
    filters: Sequence[tuple[str, str, Any]] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[JobState]:
    """The cluster's jobs (one per driver that connected) (filters, limit and detail as ``list_tasks``)."""
    return list_resource(
        "jobs",
        address=address,
        filters=filters,
        limit=limit,
        timeout=timeout,
        detail=detail,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )


def get_job(
    id: str,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> JobState | None:
    """The job with hex id ``id``, with every column; None if it is not known."""
    rows = get_resource("jobs", id, address=address, timeout=timeout)
    return rows[0] if rows else None
