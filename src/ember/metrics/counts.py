"""Plain counters a node daemon updates as things happen (read by the failure collector).

Kept apart from the collectors so that a daemon whose metrics are off never
imports prometheus_client or aiohttp.
"""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class FailureCounts:
    """Worker failures a node saw since it started (updated by the daemon as they happen)."""

    #: workers that died while the node did not mean them to
    unexpected_worker_failures: int = 0
    #: memory-monitor kills by (Type: Task | Actor, Name)
    evictions: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)

    def evicted(self, for_actor: bool, name: str) -> None:
        key = ("Actor" if for_actor else "Task", name)
        self.evictions[key] = self.evictions.get(key, 0) + 1
