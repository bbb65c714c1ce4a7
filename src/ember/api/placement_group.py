"""Placement groups: reserve bundles of resources across nodes, then schedule into them."""

from __future__ import annotations

from typing import Any

from ember.api.runtime_access import runtime
from ember.api.validation import (
    MAX_BUNDLES,
    MAX_NAME_LENGTH,
    amount_error,
    check_name,
    check_timeout,
)
from ember.common.ids import BaseID, random_id
from ember.runtime import task_context
from ember.scheduler.placement import STRATEGIES


class PlacementGroupID(BaseID):
    """A placement group's id."""

    SIZE = 18


class BundleStrategy:
    """Internal: schedule into bundle ``placement_group_bundle_index`` of a group."""

    def __init__(
        self, pg: PlacementGroup, index: int = -1, capture: bool = False
    ) -> None:
        self.placement_group = pg
        self.placement_group_bundle_index = index
        self.placement_group_capture_child_tasks = capture


class PlacementGroup:
    """A handle to a placement group (picklable)."""

    def __init__(
        self, id: PlacementGroupID, bundle_cache: list[dict[str, float]] | None = None
    ) -> None:
        self.id = id
        self._bundles = bundle_cache

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        if self._bundles is None:
            self._bundles = list(_info(self.id.binary()).bundles)
        return self._bundles

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self) -> Any:
        """An ObjectRef that resolves (to this group) once every bundle is reserved."""
        from ember.api.remote_function import RemoteFunction

        probe = RemoteFunction(_ready_probe, {})
        return probe._remote(
            (self,), {}, {"num_cpus": 0, "scheduling_strategy": BundleStrategy(self)}
        )

    def wait(self, timeout_seconds: float | int = 30) -> bool:
        """Wait until the group is created; False if ``timeout_seconds`` passed first."""
        where = "PlacementGroup.wait() 'timeout_seconds'"
        if timeout_seconds is None:
            raise TypeError(f"{where} must be a number, got None")
        check_timeout(where, timeout_seconds)
        timeout_s = float(timeout_seconds) or 1e-3
        return runtime().placement_groups.wait(self.id.binary(), timeout_s)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlacementGroup) and other.id == self.id

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"PlacementGroup({self.id.hex()})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (PlacementGroup, (self.id, self._bundles))


def _ready_probe(pg: PlacementGroup) -> PlacementGroup:
    return pg


def _info(pg_id: bytes) -> Any:
    return runtime().placement_groups.info(pg_id)


def placement_group(
    bundles: list[dict[str, float]],
    strategy: str = "PACK",
    name: str = "",
    lifetime: str | None = None,
    _max_cpu_fraction_per_node: float = 1.0,
    _soft_target_node_id: str | None = None,
    bundle_label_selector: Any = None,
) -> PlacementGroup:
    """Reserve ``bundles`` (a list of resource dicts) with ``strategy``; returns at once.

    Use ``ray.get(pg.ready())`` or ``pg.wait()`` to wait for the reservation.

    Raises:
        ValueError: empty or invalid bundles, an unknown strategy or lifetime.
    """
    _check_bundles(bundles)
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Invalid placement group strategy {strategy!r}; valid ones are "
            f"{list(STRATEGIES)}."
        )
    if lifetime not in (None, "detached"):
        raise ValueError(
            f"placement_group() 'lifetime' must be None or 'detached', got {lifetime!r}"
        )
    check_name("placement_group() 'name'", name)
    pg_id = random_id(PlacementGroupID.SIZE)
    clean = [{k: float(v) for k, v in b.items()} for b in bundles]
    runtime().placement_groups.create(
        pg_id, clean, strategy, name or "", lifetime == "detached"
    )
    return PlacementGroup(PlacementGroupID(pg_id), clean)


def _check_bundles(bundles: Any) -> None:
    if not isinstance(bundles, list) or not bundles:
        raise ValueError(
            "The placement group `bundles` argument must be a non-empty list of "
            "resource dicts, e.g. [{'CPU': 1}, {'CPU': 1}]."
        )
    if len(bundles) > MAX_BUNDLES:
        raise ValueError(
            f"placement_group() got {len(bundles)} bundles; the limit is {MAX_BUNDLES}."
        )
    for b in bundles:
        if not isinstance(b, dict) or not b:
            raise ValueError(
                f"Bundles cannot be an empty dictionary or a non-dict: {b!r}"
            )
        for k, v in b.items():
            if not isinstance(k, str) or not k or len(k) > MAX_NAME_LENGTH:
                raise ValueError(
                    "Bundle resource names must be non-empty str of at most "
                    f"{MAX_NAME_LENGTH} characters, got {k!r} in {b!r}"
                )
            try:
                message = amount_error(k, v)
            except TypeError:
                message = (
                    f"Bundle resource {k!r} must be a non-negative number, got {v!r}"
                )
            if message:
                raise ValueError(message)
        if all(v == 0 for v in b.values()):
            raise ValueError(
                f"Bundle {b!r} asks for no resources; every bundle needs at "
                "least one positive amount."
            )


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's bundles (tasks and actors in it lose their resources)."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(
            f"expected a PlacementGroup, got {type(placement_group).__name__}"
        )
    runtime().placement_groups.remove(placement_group.id.binary())


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """The live placement group with this name in the current namespace."""
    check_name("get_placement_group() 'placement_group_name'", placement_group_name)
    info = runtime().placement_groups.info_by_name(placement_group_name)
    return PlacementGroup(PlacementGroupID(info.pg_id), list(info.bundles))


def get_current_placement_group() -> PlacementGroup | None:
    """The placement group the current task or actor runs in, or None (e.g. the driver)."""
    ctx = task_context.get()
    pg = (
        ctx.extra.get("placement_group") if ctx else None
    ) or task_context.process_actor.get("placement_group")
    if not pg:
        return None
    return PlacementGroup(PlacementGroupID.from_hex(pg["pg_id"]))


def placement_group_table(
    placement_group: PlacementGroup | None = None,
) -> dict[str, Any]:
    """State of one group (or of all, keyed by hex id), as Ray's table."""
    if placement_group is not None and not isinstance(placement_group, PlacementGroup):
        raise TypeError(
            "placement_group_table() expected a PlacementGroup or None, got "
            f"{type(placement_group).__name__}"
        )
    table = {g.pg_id.hex(): _row(g) for g in runtime().placement_groups.list()}
    if placement_group is not None:
        return table.get(placement_group.id.hex(), {})
    return table


def _row(g: Any) -> dict[str, Any]:
    return {
        "placement_group_id": g.pg_id.hex(),
        "name": g.name,
        "strategy": g.strategy,
        "state": g.state,
        "bundles": dict(enumerate(g.bundles)),
        "bundles_to_node_id": {i: n.hex() for i, n in enumerate(g.bundle_nodes)},
        "stats": {},
    }
