"""Extras compatible with ``ray.util``, built only on ember's public API.

``ActorPool``, ``list_named_actors`` and ``get_node_ip_address`` load eagerly.
The submodules ``queue``, ``multiprocessing``, ``pdb``, ``placement_group``,
``scheduling_strategies``, ``dask``, ``joblib`` and ``executor``, and the names
re-exported from ``placement_group`` and ``scheduling_strategies``, load on
first access so that importing :mod:`ember.util` stays cheap and cannot create
import cycles with the core.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

import ember
from ember.util import accelerators as accelerators
from ember.util.actor_pool import ActorPool
from ember.util.debug import (
    disable_log_once_globally as disable_log_once_globally,
    enable_periodic_logging as enable_periodic_logging,
    log_once as log_once,
)
from ember.util.helpers import (
    as_completed as as_completed,
    map_unordered as map_unordered,
)
from ember.util.serialization import (
    deregister_serializer as deregister_serializer,
    inspect_serializability as inspect_serializability,
    register_serializer as register_serializer,
)

# Names forwarded from modules maintained elsewhere, loaded on first access.
_FORWARDED: dict[str, str] = {
    "placement_group": "ember.util.placement_group",
    "get_placement_group": "ember.util.placement_group",
    "get_current_placement_group": "ember.util.placement_group",
    "placement_group_table": "ember.util.placement_group",
    "remove_placement_group": "ember.util.placement_group",
    "PlacementGroup": "ember.util.placement_group",
    "PlacementGroupSchedulingStrategy": "ember.util.scheduling_strategies",
    "NodeAffinitySchedulingStrategy": "ember.util.scheduling_strategies",
    "NodeLabelSchedulingStrategy": "ember.util.scheduling_strategies",
    # ember's own: wait for many refs with a progress bar (docs/seams/logs.md)
    "progress": "ember.util.ref_progress",
}
_SUBMODULES = frozenset(
    {
        "queue",
        "multiprocessing",
        "pdb",
        "scheduling_strategies",
        "dask",
        "joblib",
        "executor",
        "collective",
    }
)

__all__ = [
    "ActorPool",
    "accelerators",
    "as_completed",
    "deregister_serializer",
    "disable_log_once_globally",
    "enable_periodic_logging",
    "get_current_placement_group",
    "get_node_instance_id",
    "get_node_ip_address",
    "get_placement_group",
    "inspect_serializability",
    "list_named_actors",
    "log_once",
    "map_unordered",
    "pdb",
    "placement_group",
    "placement_group_table",
    "register_serializer",
    "remove_placement_group",
    "progress",
]


def list_named_actors(all_namespaces: bool = False) -> list[str] | list[dict[str, str]]:
    """List the named actors that are alive in the cluster.

    Args:
        all_namespaces: Include every namespace, not just the current one.

    Returns:
        Actor names when ``all_namespaces`` is False; otherwise dicts of the
        form ``{"name": name, "namespace": namespace}``.
    """
    # Contract with the core: the top-level package provides
    # ``ember._private_list_named_actors(all_namespaces: bool)``, which
    # checks that ember is initialized and returns exactly the value
    # described above (names, or {"name", "namespace"} dicts).
    return ember._private_list_named_actors(all_namespaces)


def get_node_instance_id() -> str:
    """The cloud instance id of this node: always ``""`` (ember reads no cloud metadata).

    Ray answers ``""`` too outside a cloud VM.
    """
    return ""


def get_node_ip_address(address: str | None = None) -> str:
    """Return the IP address of the node this process runs on.

    Args:
        address: Accepted for compatibility with Ray and ignored.

    Returns:
        The node's IP address as a string.
    """
    # Contract with the core: ``ember._private_node_ip_address()`` takes no
    # arguments and returns the address the local node is reachable at.
    del address
    return ember._private_node_ip_address()


def _forward(name: str) -> Any:
    module_name = _FORWARDED[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name != module_name:
            raise
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}: {module_name} is not available"
        ) from exc
    try:
        return getattr(module, name)
    except AttributeError as exc:
        raise AttributeError(
            f"module {__name__!r} has no attribute {name!r}: {module_name} does not define it"
        ) from exc


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _FORWARDED:
        return _forward(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBMODULES, *_FORWARDED})


class _UtilModule(types.ModuleType):
    """Keeps ``ember.util.placement_group`` meaning the function, as in Ray.

    Importing the submodule ``ember.util.placement_group`` makes Python set a
    package attribute of the same name to the module, which would hide the
    function. A data descriptor on the module's class wins over that, so the
    attribute always resolves to the function; the module itself stays
    reachable through ``sys.modules`` and ``from ... import``.
    """

    @property
    def placement_group(self) -> Any:
        return _forward("placement_group")

    @placement_group.setter
    def placement_group(self, value: Any) -> None:
        # Only the import system assigns this (the submodule object); ignore it.
        del value

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        # By reference, as pickle does for plain modules: a task that closes over
        # ember.util imports it on the worker. (A ModuleType subclass is not in
        # cloudpickle's table of module types, so without this it fails.)
        return importlib.import_module, (self.__name__,)


sys.modules[__name__].__class__ = _UtilModule
