"""The Runtime protocol: what the public API asks of the engine that runs the program.

Theory of operation. Every public function in ``ember.api`` validates its
arguments in the caller's process (so a bad value never reaches a daemon),
then asks :func:`ember.api.runtime_access.runtime` for the current
:class:`Runtime` and makes one call on it. Two implementations exist:

- :class:`ember.api.cluster_runtime.ClusterRuntime`: a thin adapter over the
  process's ``runtime.core_worker.CoreWorker`` (drivers and workers of a
  cluster, embedded or not).
- :class:`ember.api.local_mode.LocalModeRuntime`: ``init(local_mode=True)``,
  everything serial in the driver.

::

    user code --> api/*.py (validate) --> runtime_access.runtime() --> Runtime
                                                                   |-> ClusterRuntime -> CoreWorker
                                                                   '-> LocalModeRuntime

The arguments a Runtime gets are already checked; it does not validate them
again. Actor handles are ``api.actor.ActorHandle`` objects; this module names
them only structurally (``ActorHandleLike``), so that it imports nothing from
``ember.api`` and the package has no import cycle.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from ember.runtime.object_ref import ObjectRef


class ActorHandleLike(Protocol):
    """The parts of ``api.actor.ActorHandle`` a Runtime reads."""

    _actor_id_bytes: bytes
    _class_name: str
    _max_task_retries: int


class Runtime(Protocol):
    """Tasks, actors, objects and cluster information for one process."""

    # identity -------------------------------------------------------------------
    @property
    def namespace(self) -> str: ...
    @property
    def job_id(self) -> bytes: ...
    @property
    def node_id(self) -> bytes: ...
    @property
    def worker_id(self) -> bytes: ...
    @property
    def node_ip(self) -> str: ...

    # tasks and actors -----------------------------------------------------------
    def submit_task(
        self,
        function: Any,
        export_cache: dict[int, bytes],
        name: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
        num_returns: int | str,
    ) -> Any:
        """Run ``function`` as a task; its ObjectRef, list of them, None or generator."""

    def create_actor(
        self,
        cls: type,
        export_cache: dict[int, bytes],
        meta: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> Any:
        """Create an actor of ``cls``; return its ``ActorHandle`` at once."""

    def call_actor(
        self,
        handle: ActorHandleLike,
        method: str,
        meta: dict[str, Any],
        options: dict[str, Any],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> Any:
        """Call ``handle.method``; like :meth:`submit_task` for the result."""

    def get_actor(self, name: str, namespace: str | None) -> Any:
        """The handle of a live named actor. Raises ValueError if there is none."""

    def kill(self, handle: ActorHandleLike, no_restart: bool) -> None: ...

    def list_named_actors(self, all_namespaces: bool) -> list[Any]: ...

    # objects --------------------------------------------------------------------
    def get(self, refs: list[ObjectRef], timeout: float | None) -> list[Any]: ...

    def put(self, value: Any) -> ObjectRef: ...

    def wait(
        self,
        refs: list[ObjectRef],
        num_returns: int,
        timeout: float | None,
        fetch_local: bool,
    ) -> list[bool]:
        """Per ref, whether it is ready, once ``num_returns`` are or time is up."""

    def cancel(self, ref: ObjectRef, force: bool, recursive: bool) -> None: ...

    # cluster information ----------------------------------------------------------
    def nodes(self) -> list[dict[str, Any]]: ...

    def cluster_resources(self) -> dict[str, float]: ...

    def available_resources(self) -> dict[str, float]: ...

    def context_info(self) -> dict[str, Any]:
        """What ``init()`` returns (addresses of the cluster)."""

    # placement groups -------------------------------------------------------------
    @property
    def placement_groups(self) -> PlacementGroups: ...

    # lifetime -------------------------------------------------------------------
    def shutdown(self) -> None:
        """Disconnect (a driver) and free what this runtime holds."""


class PlacementGroups(Protocol):
    """Placement-group calls (not on any hot path, so one level further down)."""

    def create(
        self,
        pg_id: bytes,
        bundles: list[dict[str, float]],
        strategy: str,
        name: str,
        detached: bool,
    ) -> None: ...

    def info(self, pg_id: bytes) -> Any:
        """The group's ``PlacementGroupInfo``. Raises ValueError if unknown."""

    def info_by_name(self, name: str) -> Any:
        """The ``PlacementGroupInfo`` of the named group. Raises ValueError."""

    def wait(self, pg_id: bytes, timeout_s: float) -> bool: ...

    def remove(self, pg_id: bytes) -> None: ...

    def list(self) -> list[Any]:
        """Every group's ``PlacementGroupInfo``."""
