"""``list_placement_groups`` and ``get_placement_group``: rows from the control service's tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ember.util.state.common import (
    DEFAULT_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    get_resource,
    list_resource,
)
from ember.util.state.schemas import PlacementGroupState


def list_placement_groups(
    address: str | None = None,
    filters: Sequence[tuple[str, str, Any]] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[PlacementGroupState]:
    """The cluster's placement groups (filters, limit and detail as ``list_tasks``)."""
    return list_resource(
        "placement_groups",
        address=address,
        filters=filters,
        limit=limit,
        timeout=timeout,
        detail=detail,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
    )


def get_placement_group(
    id: str,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> PlacementGroupState | None:
    """The placement group with hex id ``id``, with every column; None if it is not known."""
    rows = get_resource("placement_groups", id, address=address, timeout=timeout)
    return rows[0] if rows else None
