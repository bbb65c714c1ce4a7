"""Ray-compatible path ``ember.util.placement_group`` (placement groups)."""

from __future__ import annotations

from ember.api.placement_group import (
    NODE_ID_LABEL_KEY as NODE_ID_LABEL_KEY,
    VALID_PLACEMENT_GROUP_STRATEGIES as VALID_PLACEMENT_GROUP_STRATEGIES,
    PlacementGroup as PlacementGroup,
    check_placement_group_index as check_placement_group_index,
    get_current_placement_group as get_current_placement_group,
    get_placement_group as get_placement_group,
    placement_group as placement_group,
    placement_group_table as placement_group_table,
    remove_placement_group as remove_placement_group,
    validate_placement_group as validate_placement_group,
)

__all__ = [
    "NODE_ID_LABEL_KEY",
    "VALID_PLACEMENT_GROUP_STRATEGIES",
    "PlacementGroup",
    "check_placement_group_index",
    "get_current_placement_group",
    "get_placement_group",
    "placement_group",
    "placement_group_table",
    "remove_placement_group",
    "validate_placement_group",
]
