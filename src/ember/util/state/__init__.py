"""The state API (as Ray's ``ray.util.state``): what the cluster holds and runs."""

from __future__ import annotations

from ember.util.state.objects import (
    get_objects as get_objects,
    list_objects as list_objects,
    summarize_objects as summarize_objects,
)
