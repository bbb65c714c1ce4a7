"""Tunables, read once at process start and passed down."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

#: Values whose serialized size is below this travel inline in messages.
INLINE_THRESHOLD_BYTES = 100 * 1024


@dataclasses.dataclass(frozen=True)
class Config:
    """Engine tunables with ``EMBER_<NAME>`` environment overrides."""

    #: objects below this size live inline in the owner's memory store
    inline_threshold_bytes: int = INLINE_THRESHOLD_BYTES
    #: how long an idle lease is kept by a submitter before it is returned
    lease_linger_s: float = 0.05
    #: tasks in flight on one leased worker
    max_tasks_in_flight_per_worker: int = 1
    #: lease requests a submitter keeps outstanding per scheduling key
    max_pending_lease_requests: int = 8
    #: idle workers above the CPU count are stopped after this long
    idle_worker_timeout_s: float = 10.0
    #: how often a node daemon heartbeats to the control service
    heartbeat_interval_s: float = 0.5
    #: a node missing heartbeats this long is declared dead
    node_death_timeout_s: float = 10.0
    #: how long connecting to a daemon may take before giving up
    connect_timeout_s: float = 10.0
    #: how often an infeasible request is reported again
    infeasible_warning_interval_s: float = 30.0

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> Config:
        """Defaults, then ``EMBER_*`` variables, then ``overrides``."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get("EMBER_" + field.name.upper())
            if raw is not None:
                values[field.name] = type(field.default)(raw)  # type: ignore[misc]
        values.update(overrides or {})
        return cls(**values)
