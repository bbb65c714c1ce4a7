"""Whether a task's or actor's request fits a bundle of its placement group (at submission)."""

from __future__ import annotations

from typing import Any


def check_request_fits(options: dict[str, Any], what: str, actor: bool) -> None:
    """Reject, at submission, a request that fits no bundle of its placement group.

    As Ray: the request (``num_cpus``, ``num_gpus``, ``memory``, ``resources``;
    a task asks for 1 CPU by default) must fit one bundle of the group, whatever
    its bundle index; an actor that sets no ``num_cpus`` needs a bundle with 1 CPU
    for its creation.

    Raises:
        ValueError: with Ray 2.60's message.
    """
    pg = _group_of(options)
    if pg is None:
        return
    request: dict[str, Any] = dict(options.get("resources") or {})
    cpus = options.get("num_cpus")
    if cpus is not None or not actor:
        request["CPU"] = 1 if cpus is None else cpus
    for option, resource in (("num_gpus", "GPU"), ("memory", "memory")):
        if options.get(option) is not None:
            request[resource] = options[option]
    bundles = pg.bundle_specs
    if not _fits_a_bundle(request, bundles):
        raise ValueError(
            f"Cannot schedule {what} with the placement group because the resource "
            f"request {request} cannot fit into any bundles for the placement group, "
            f"{bundles}."
        )
    if actor and cpus is None and not _fits_a_bundle({"CPU": 1}, bundles):
        raise ValueError(
            f"Cannot schedule {what} with the placement group because the actor "
            "requires 1 CPU for creation, but it cannot fit into any bundles for the "
            f"placement group, {bundles}. Consider creating a placement group with "
            "CPU resources."
        )


def _group_of(options: dict[str, Any]) -> Any:
    """The PlacementGroup the options schedule into, or None."""
    strategy = options.get("scheduling_strategy")
    pg = getattr(strategy, "placement_group", None)
    if pg is None and strategy is None:
        pg = options.get("placement_group")
    return pg if hasattr(pg, "bundle_specs") else None


def _fits_a_bundle(request: dict[str, Any], bundles: list[dict[str, float]]) -> bool:
    return any(
        all(
            bundle.get(k, 0) >= v
            for k, v in request.items()
            if not k.startswith("bundle_group")
        )
        for bundle in bundles
    )
