"""Ray-compatible path ``ember.util.placement_group`` (placement groups)."""

from __future__ import annotations

from ember.api.placement_group import (
    PlacementGroup as PlacementGroup,
    get_current_placement_group as get_current_placement_group,
    get_placement_group as get_placement_group,
    placement_group as placement_group,
    placement_group_table as placement_group_table,
    remove_placement_group as remove_placement_group,
)

__all__ = [
    "PlacementGroup",
    "get_current_placement_group",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
]
