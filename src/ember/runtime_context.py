"""Ray-compatible path ``ember.runtime_context``."""

from __future__ import annotations

from ember.api.context import (
    RuntimeContext as RuntimeContext,
    get_runtime_context as get_runtime_context,
)

__all__ = ["RuntimeContext", "get_runtime_context"]
