"""Placement groups: reserve bundles of resources across nodes, then schedule into them."""

from __future__ import annotations

from typing import Any

from ember.api import ignored_options
from ember.api.runtime_access import runtime
from ember.api.validation import (
    MAX_BUNDLES,
    MAX_NAME_LENGTH,
    amount_error,
    check_name,
    check_timeout,
)
from ember.common.ids import BaseID, NodeID, random_id
from ember.common.node_labels import NODE_ID_KEY
from ember.runtime import task_context
from ember.scheduler.placement import STRATEGIES

#: The strategies ``placement_group()`` accepts.
VALID_PLACEMENT_GROUP_STRATEGIES = set(STRATEGIES)

#: The label every node carries: its hex node id (Ray's built-in node label).
NODE_ID_LABEL_KEY = NODE_ID_KEY


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
    """A handle to a placement group (picklable).

    ``PlacementGroup.empty()`` is the "no placement group" handle (a nil id).
    """

    @staticmethod
    def empty() -> PlacementGroup:
        """The handle that stands for "no placement group"."""
        return PlacementGroup(PlacementGroupID.nil())

    def __init__(
        self, id: PlacementGroupID, bundle_cache: list[dict[str, float]] | None = None
    ) -> None:
        self.id = id
        self._bundles = bundle_cache

    @property
    def is_empty(self) -> bool:
        """Whether this is the ``empty()`` handle."""
        return self.id.is_nil()

    @property
    def bundle_specs(self) -> list[dict[str, float]]:
        if self.is_empty:
            return []
        if self._bundles is None:
            self._bundles = list(_info(self.id.binary()).bundles)
        return self._bundles

    @property
    def bundle_count(self) -> int:
        return len(self.bundle_specs)

    def ready(self) -> Any:
        """An ObjectRef that resolves (to this group) once every bundle is reserved."""
        from ember.api.remote_function import RemoteFunction

        if self.is_empty:
            from ember.api.objects import put

            return put(self)
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
        if self.is_empty:
            return True
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
    strategy: str | None = None,
    name: str = "",
    lifetime: str | None = None,
    _soft_target_node_id: str | None = None,
    bundle_label_selector: Any = None,
    topology_strategy: dict[str, str] | None = None,
    _max_cpu_fraction_per_node: float = 1.0,
) -> PlacementGroup:
    """Reserve ``bundles`` (a list of resource dicts) with ``strategy``; returns at once.

    ``strategy`` defaults to ``"PACK"``. ``topology_strategy`` is the other way
    to say it: ``{NODE_ID_LABEL_KEY: "SPREAD"}`` is ``strategy="SPREAD"``
    (the two are mutually exclusive). Use ``ray.get(pg.ready())`` or
    ``pg.wait()`` to wait for the reservation.

    Raises:
        ValueError: empty or invalid bundles, an unknown strategy or lifetime,
            both ``strategy`` and ``topology_strategy``.
        NotImplementedError: ``topology_strategy`` names a topology label other
            than the node id (GPU-domain packing needs accelerator topology,
            which ember does not model).
    """
    validate_placement_group(
        bundles,
        strategy,
        lifetime,
        _soft_target_node_id,
        bundle_label_selector,
        topology_strategy,
    )
    check_name("placement_group() 'name'", name)
    if bundle_label_selector:
        ignored_options.warn_ignored(
            "placement_group(bundle_label_selector=...)",
            "bundles are placed by resources only; the selector is checked, not applied",
        )
    if _soft_target_node_id is not None:
        ignored_options.warn_ignored(
            "placement_group(_soft_target_node_id=...)",
            "bundles are placed by the strategy alone",
        )
    node_strategy = _node_level_strategy(strategy, topology_strategy)
    pg_id = random_id(PlacementGroupID.SIZE)
    clean = [{k: float(v) for k, v in b.items()} for b in bundles]
    runtime().placement_groups.create(
        pg_id, clean, node_strategy, name or "", lifetime == "detached"
    )
    return PlacementGroup(PlacementGroupID(pg_id), clean)


def _node_level_strategy(
    strategy: str | None, topology_strategy: dict[str, str] | None
) -> str:
    if topology_strategy is not None:
        return topology_strategy.get(NODE_ID_LABEL_KEY, "PACK")
    return strategy if strategy is not None else "PACK"


def validate_placement_group(
    bundles: list[dict[str, float]],
    strategy: str | None = None,
    lifetime: str | None = None,
    _soft_target_node_id: str | None = None,
    bundle_label_selector: Any = None,
    topology_strategy: dict[str, str] | None = None,
) -> bool:
    """Check ``placement_group()``'s arguments; True, or raise ValueError.

    Raises:
        ValueError: what ``placement_group()`` would reject.
        NotImplementedError: a topology label other than the node id.
    """
    if topology_strategy is not None and strategy is not None:
        raise ValueError(
            "`strategy` and `topology_strategy` cannot both be specified; give the "
            f"node-level strategy as topology_strategy[{NODE_ID_LABEL_KEY!r}]."
        )
    if strategy is not None and strategy not in VALID_PLACEMENT_GROUP_STRATEGIES:
        raise ValueError(
            f"Invalid placement group strategy {strategy!r}; valid ones are "
            f"{list(STRATEGIES)}."
        )
    if topology_strategy is not None:
        _check_topology_strategy(topology_strategy)
    node_strategy = _node_level_strategy(strategy, topology_strategy)
    if _soft_target_node_id is not None:
        if node_strategy != "STRICT_PACK":
            raise ValueError(
                f"_soft_target_node_id only works with STRICT_PACK, got {node_strategy}"
            )
        try:
            nil = NodeID.from_hex(_soft_target_node_id).is_nil()
        except ValueError:
            nil = True
        if nil:
            raise ValueError(
                f"Invalid hex id of _soft_target_node_id, got {_soft_target_node_id!r}"
            )
    _check_bundles(bundles)
    if bundle_label_selector is not None:
        _check_bundle_label_selector(bundle_label_selector, len(bundles))
    if lifetime not in (None, "detached"):
        raise ValueError(
            f"placement_group() 'lifetime' must be None or 'detached', got {lifetime!r}"
        )
    return True


def _check_topology_strategy(topology_strategy: Any) -> None:
    if not isinstance(topology_strategy, dict):
        raise ValueError(
            "`topology_strategy` must be a dict, got "
            f"{type(topology_strategy).__name__}."
        )
    if len(topology_strategy) > 2:
        raise ValueError(
            f"`topology_strategy` holds at most 2 entries ({NODE_ID_LABEL_KEY!r} and "
            f"one topology label), got {len(topology_strategy)}."
        )
    others = []
    for key, value in topology_strategy.items():
        if not isinstance(key, str) or not key:
            raise ValueError(
                f"`topology_strategy` keys must be non-empty strings, got {key!r}."
            )
        if value not in VALID_PLACEMENT_GROUP_STRATEGIES:
            raise ValueError(
                f"Invalid topology strategy {value!r} for label {key!r}; valid ones "
                f"are {list(STRATEGIES)}."
            )
        if key != NODE_ID_LABEL_KEY:
            others.append(key)
            if value != "STRICT_PACK":
                raise ValueError(
                    f"Topology strategy {value!r} for label {key!r} is not supported; "
                    f"labels other than {NODE_ID_LABEL_KEY!r} take only 'STRICT_PACK'."
                )
    if len(others) > 1:
        raise ValueError(
            "`topology_strategy` supports at most one topology label other than "
            f"{NODE_ID_LABEL_KEY!r}, got {others}."
        )
    if others:
        raise NotImplementedError(
            f"topology_strategy label {others[0]!r}: packing bundles into one "
            "accelerator topology domain is not supported by ember (it has no model "
            f"of GPU interconnects); use {{{NODE_ID_LABEL_KEY!r}: strategy}} or "
            "`strategy=` instead."
        )


def _check_bundle_label_selector(selector: Any, n_bundles: int) -> None:
    if not isinstance(selector, list):
        raise ValueError(
            "Placement group bundle_label_selector must be a list, got "
            f"{type(selector).__name__}."
        )
    if selector and len(selector) != n_bundles:
        raise ValueError(
            f"Invalid bundle label selector {selector}: it needs one entry per bundle "
            f"({n_bundles})."
        )
    for entry in selector:
        if not isinstance(entry, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in entry.items()
        ):
            raise ValueError(
                "Bundle label selector must be a list of dicts of str to str, e.g. "
                '[{"ray.io/market-type": "spot"}].'
            )


def check_placement_group_index(
    placement_group: PlacementGroup, bundle_index: int
) -> None:
    """Raise ValueError unless ``bundle_index`` is -1 or a bundle of the group."""
    if placement_group.is_empty:
        if bundle_index != -1:
            raise ValueError(
                "If placement group is not set, the value of bundle index must be -1."
            )
    elif bundle_index >= placement_group.bundle_count or bundle_index < -1:
        raise ValueError(
            f"placement group bundle index {bundle_index} is invalid. Valid "
            f"placement group indexes: 0-{placement_group.bundle_count}"
        )


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
