"""Placement groups in local mode: recorded and at once "created" (one process, no reservation).

Tasks and actors scheduled into a group run like any other local-mode call;
the group only answers ``ready()``, ``wait()``, lookups by name and the table.
"""

from __future__ import annotations

from ember.protocol.messages import PlacementGroupInfo


class LocalPlacementGroups:
    """The PlacementGroups of local mode."""

    def __init__(self, namespace: str) -> None:
        self._namespace = namespace
        self._groups: dict[bytes, PlacementGroupInfo] = {}

    def create(
        self,
        pg_id: bytes,
        bundles: list[dict[str, float]],
        strategy: str,
        name: str,
        detached: bool,
    ) -> None:
        if name and any(
            g.name == name and g.state != "REMOVED" for g in self._groups.values()
        ):
            raise ValueError(f"Placement group name {name!r} is already taken.")
        self._groups[pg_id] = PlacementGroupInfo(
            pg_id=pg_id,
            bundles=bundles,
            strategy=strategy,
            state="CREATED",
            name=name,
            namespace=self._namespace,
            detached=detached,
        )

    def info(self, pg_id: bytes) -> PlacementGroupInfo:
        info = self._groups.get(pg_id)
        if info is None:
            raise ValueError(f"Placement group {pg_id.hex()} does not exist.")
        return info

    def info_by_name(self, name: str) -> PlacementGroupInfo:
        for g in self._groups.values():
            if g.name == name and g.state != "REMOVED":
                return g
        raise ValueError(f"Failed to look up placement group with name {name!r}.")

    def wait(self, pg_id: bytes, timeout_s: float) -> bool:
        return self.info(pg_id).state == "CREATED"

    def remove(self, pg_id: bytes) -> None:
        self.info(pg_id).state = "REMOVED"

    def list(self) -> list[PlacementGroupInfo]:
        return list(self._groups.values())
