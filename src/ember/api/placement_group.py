"""Placement groups: reserve bundles of resources across nodes, then schedule into them."""

from __future__ import annotations

from typing import Any

from ember.api.runtime_access import worker
from ember.common.ids import BaseID, random_id
from ember.protocol.messages import PlacementGroupInfo, PlacementGroupRequest
from ember.rpc.errors import RemoteError
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
        cw = worker()
        reply, _ = cw.run(
            cw.control.call(
                "control.wait_placement_group",
                PlacementGroupRequest(
                    pg_id=self.id.binary(), timeout_s=float(timeout_seconds) or 1e-3
                ),
            )
        )
        return bool(reply.ready)

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


def _info(pg_id: bytes) -> PlacementGroupInfo:
    cw = worker()
    try:
        info, _ = cw.run(
            cw.control.call(
                "control.get_placement_group", PlacementGroupRequest(pg_id=pg_id)
            )
        )
    except RemoteError as err:
        raise ValueError(err.remote_message) from None
    return info


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
    if not isinstance(bundles, list) or not bundles:
        raise ValueError(
            "The placement group `bundles` argument must be a non-empty list of "
            "resource dicts, e.g. [{'CPU': 1}, {'CPU': 1}]."
        )
    for b in bundles:
        if not isinstance(b, dict) or not b:
            raise ValueError(
                f"Bundles cannot be an empty dictionary or a non-dict: {b!r}"
            )
        for k, v in b.items():
            if not isinstance(v, (int, float)) or v < 0:
                raise ValueError(
                    f"Bundle resource {k!r} must be a non-negative number, got {v!r}"
                )
        if all(v == 0 for v in b.values()):
            raise ValueError(
                f"Bundle {b!r} asks for no resources; every bundle needs at "
                "least one positive amount."
            )
    if strategy not in STRATEGIES:
        raise ValueError(
            f"Invalid placement group strategy {strategy!r}; valid ones are "
            f"{list(STRATEGIES)}."
        )
    if lifetime not in (None, "detached"):
        raise ValueError(
            f"placement_group() 'lifetime' must be None or 'detached', got {lifetime!r}"
        )
    cw = worker()
    pg_id = random_id(PlacementGroupID.SIZE)
    clean = [{k: float(v) for k, v in b.items()} for b in bundles]
    info = PlacementGroupInfo(
        pg_id=pg_id,
        bundles=clean,
        strategy=strategy,
        name=name or "",
        namespace=cw.namespace,
        job_id=cw.job_id,
        detached=lifetime == "detached",
    )
    try:
        cw.run(cw.control.call("control.create_placement_group", info))
    except RemoteError as err:
        if err.is_a(ValueError):
            raise ValueError(err.remote_message) from None
        raise
    return PlacementGroup(PlacementGroupID(pg_id), clean)


def remove_placement_group(placement_group: PlacementGroup) -> None:
    """Release the group's bundles (tasks and actors in it lose their resources)."""
    if not isinstance(placement_group, PlacementGroup):
        raise TypeError(
            f"expected a PlacementGroup, got {type(placement_group).__name__}"
        )
    cw = worker()
    cw.run(
        cw.control.call(
            "control.remove_placement_group",
            PlacementGroupRequest(pg_id=placement_group.id.binary()),
        )
    )


def get_placement_group(placement_group_name: str) -> PlacementGroup:
    """The live placement group with this name in the current namespace."""
    cw = worker()
    try:
        info, _ = cw.run(
            cw.control.call(
                "control.get_placement_group",
                PlacementGroupRequest(
                    name=placement_group_name, namespace=cw.namespace
                ),
            )
        )
    except RemoteError as err:
        raise ValueError(err.remote_message) from None
    return PlacementGroup(PlacementGroupID(info.pg_id), list(info.bundles))


def get_current_placement_group() -> PlacementGroup | None:
    """The placement group the current task or actor runs in, or None (e.g. the driver)."""
    ctx = task_context.get()
    pg = (
        ctx.extra.get("placement_group") if ctx else None
    ) or task_context.process_actor.get("placement_group")
    if not pg:
        return None
    return PlacementGroup(PlacementGroupID.from_hex(pg["pg_id"]))  # type: ignore[arg-type]


def placement_group_table(
    placement_group: PlacementGroup | None = None,
) -> dict[str, Any]:
    """State of one group (or of all, keyed by hex id), as Ray's table."""
    cw = worker()
    reply, _ = cw.run(cw.control.call("control.list_placement_groups", _empty()))
    table = {g.pg_id.hex(): _row(g) for g in reply.groups}
    if placement_group is not None:
        return table.get(placement_group.id.hex(), {})
    return table


def _row(g: PlacementGroupInfo) -> dict[str, Any]:
    return {
        "placement_group_id": g.pg_id.hex(),
        "name": g.name,
        "strategy": g.strategy,
        "state": g.state,
        "bundles": dict(enumerate(g.bundles)),
        "bundles_to_node_id": {i: n.hex() for i, n in enumerate(g.bundle_nodes)},
        "stats": {},
    }


def _empty() -> Any:
    from ember.protocol.messages import Empty

    return Empty()
