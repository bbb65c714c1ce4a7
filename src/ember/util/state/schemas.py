"""The rows the state API returns: one dataclass per resource, with Ray's columns.

Each column says whether it can be filtered on and whether it is a detail
column (filled only with ``detail=True``, by ``get_*``, or ``--detail``;
``None`` otherwise), as in Ray's ``ray.util.state.common``.  A row reads
both as attributes (``task.state``) and as a dict (``task["state"]``,
``task.get("state")``); :meth:`StateSchema.asdict` gives a plain dict.
"""

# ruff: noqa: RUF009 (state_column is a dataclass field specifier, like field())
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar


def state_column(
    *, filterable: bool, detail: bool = False, kind: type = str, **kwargs: Any
) -> Any:
    """A column: ``kind`` is the type a filter value is read as (str, int, bool)."""
    metadata = {"filterable": filterable, "detail": detail, "kind": kind}
    if detail:
        kwargs.setdefault("default", None)
    return field(metadata=metadata, **kwargs)


class StateSchema:
    """What every state row offers: column lists, and dict-style access."""

    #: the column a ``get_*`` call looks the id up in
    ID_COLUMN: ClassVar[str] = ""

    @classmethod
    def list_columns(cls, detail: bool = True) -> list[str]:
        """The columns, in order; the base ones only unless ``detail``."""
        return [
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if detail or not f.metadata.get("detail", False)
        ]

    @classmethod
    def columns(cls) -> set[str]:
        return set(cls.list_columns(detail=True))

    @classmethod
    def filterable_columns(cls) -> set[str]:
        return {
            f.name
            for f in fields(cls)  # type: ignore[arg-type]
            if f.metadata.get("filterable", False)
        }

    @classmethod
    def column_kinds(cls) -> dict[str, type]:
        return {f.name: f.metadata.get("kind", str) for f in fields(cls)}  # type: ignore[arg-type]

    @classmethod
    def base_columns(cls) -> set[str]:
        return set(cls.list_columns(detail=False))

    @classmethod
    def detail_columns(cls) -> set[str]:
        return set(cls.list_columns(detail=True))

    @classmethod
    def from_row(cls, row: dict[str, Any], detail: bool) -> StateSchema:
        """A row of this resource with the base (or all) columns of ``row``."""
        return cls(**{c: row.get(c) for c in cls.list_columns(detail)})

    def asdict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def __setitem__(self, key: str, value: Any) -> None:
        setattr(self, key, value)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


@dataclass(kw_only=True)
class ActorState(StateSchema):
    """An actor."""

    ID_COLUMN: ClassVar[str] = "actor_id"

    actor_id: str = state_column(filterable=True)
    class_name: str = state_column(filterable=True)
    #: DEPENDENCIES_UNREADY | PENDING_CREATION | ALIVE | RESTARTING | DEAD
    state: str = state_column(filterable=True)
    job_id: str = state_column(filterable=True)
    name: str | None = state_column(filterable=True)
    node_id: str | None = state_column(filterable=True)
    pid: int | None = state_column(filterable=True, kind=int)
    ray_namespace: str | None = state_column(filterable=True)
    serialized_runtime_env: str | None = state_column(filterable=False, detail=True)
    required_resources: dict[str, Any] | None = state_column(
        filterable=False, detail=True
    )
    death_cause: dict[str, Any] | None = state_column(filterable=False, detail=True)
    is_detached: bool | None = state_column(filterable=False, detail=True, kind=bool)
    placement_group_id: str | None = state_column(filterable=True, detail=True)
    repr_name: str | None = state_column(filterable=True, detail=True)
    num_restarts: int | None = state_column(filterable=False, detail=True, kind=int)
    num_restarts_due_to_lineage_reconstruction: int | None = state_column(
        filterable=False, detail=True, kind=int
    )
    num_restarts_due_to_node_preemption: int | None = state_column(
        filterable=False, detail=True, kind=int
    )
    call_site: str | None = state_column(filterable=False, detail=True)
    label_selector: dict[str, Any] | None = state_column(filterable=False, detail=True)
    fallback_strategy: Any = state_column(filterable=False, detail=True)


@dataclass(kw_only=True)
class PlacementGroupState(StateSchema):
    """A placement group."""

    ID_COLUMN: ClassVar[str] = "placement_group_id"

    placement_group_id: str = state_column(filterable=True)
    name: str = state_column(filterable=True)
    creator_job_id: str = state_column(filterable=True)
    #: PENDING | CREATED | REMOVED | RESCHEDULING
    state: str = state_column(filterable=True)
    bundles: list[dict[str, Any]] | None = state_column(filterable=False, detail=True)
    is_detached: bool | None = state_column(filterable=True, detail=True, kind=bool)
    stats: dict[str, Any] | None = state_column(filterable=False, detail=True)
    topology_strategy: dict[str, Any] | None = state_column(
        filterable=False, detail=True
    )
    topology_assignments: dict[str, Any] | None = state_column(
        filterable=False, detail=True
    )


@dataclass(kw_only=True)
class NodeState(StateSchema):
    """A node."""

    ID_COLUMN: ClassVar[str] = "node_id"

    node_id: str = state_column(filterable=True)
    node_ip: str = state_column(filterable=True)
    is_head_node: bool = state_column(filterable=True, kind=bool)
    #: ALIVE | DEAD
    state: str = state_column(filterable=True)
    state_message: str | None = state_column(filterable=False)
    node_name: str = state_column(filterable=True)
    resources_total: dict[str, Any] = state_column(filterable=False)
    labels: dict[str, str] = state_column(filterable=False)
    start_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)
    end_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)


@dataclass(kw_only=True)
class WorkerState(StateSchema):
    """A worker or driver process."""

    ID_COLUMN: ClassVar[str] = "worker_id"

    worker_id: str = state_column(filterable=True)
    is_alive: bool = state_column(filterable=True, kind=bool)
    #: WORKER | DRIVER
    worker_type: str = state_column(filterable=True)
    exit_type: str | None = state_column(filterable=True)
    node_id: str = state_column(filterable=True)
    ip: str = state_column(filterable=True)
    pid: int = state_column(filterable=True, kind=int)
    exit_detail: str | None = state_column(filterable=False, detail=True)
    worker_launch_time_ms: int | None = state_column(
        filterable=False, detail=True, kind=int
    )
    worker_launched_time_ms: int | None = state_column(
        filterable=False, detail=True, kind=int
    )
    start_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)
    end_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)
    debugger_port: int | None = state_column(filterable=True, detail=True, kind=int)
    num_paused_threads: int | None = state_column(
        filterable=True, detail=True, kind=int
    )


@dataclass(kw_only=True)
class JobState(StateSchema):
    """A job: one driver's run (ember has no job submission yet)."""

    ID_COLUMN: ClassVar[str] = "job_id"

    #: DRIVER | SUBMISSION
    type: str = state_column(filterable=True)
    job_id: str | None = state_column(filterable=True)
    submission_id: str | None = state_column(filterable=True)
    driver_info: dict[str, Any] | None = state_column(filterable=False)
    #: PENDING | RUNNING | STOPPED | SUCCEEDED | FAILED
    status: str = state_column(filterable=True)
    entrypoint: str = state_column(filterable=False)
    message: str | None = state_column(filterable=False)
    error_type: str | None = state_column(filterable=False)
    start_time: int | None = state_column(filterable=False, detail=True, kind=int)
    end_time: int | None = state_column(filterable=False, detail=True, kind=int)
    metadata: dict[str, str] | None = state_column(filterable=False, detail=True)
    runtime_env: dict[str, Any] | None = state_column(filterable=False, detail=True)
    driver_agent_http_address: str | None = state_column(filterable=False, detail=True)
    driver_node_id: str | None = state_column(filterable=False, detail=True)
    driver_exit_code: int | None = state_column(filterable=False, detail=True, kind=int)


@dataclass(kw_only=True)
class TaskState(StateSchema):
    """One attempt of a task or actor call (a retried task has several)."""

    ID_COLUMN: ClassVar[str] = "task_id"

    task_id: str = state_column(filterable=True)
    attempt_number: int = state_column(filterable=True, kind=int)
    name: str = state_column(filterable=True)
    #: PENDING_ARGS_AVAIL | PENDING_NODE_ASSIGNMENT | SUBMITTED_TO_WORKER | RUNNING
    #: | FINISHED | FAILED (Ray's TaskStatus names)
    state: str = state_column(filterable=True)
    job_id: str = state_column(filterable=True)
    actor_id: str | None = state_column(filterable=True)
    #: NORMAL_TASK | ACTOR_CREATION_TASK | ACTOR_TASK
    type: str = state_column(filterable=True)
    func_or_class_name: str = state_column(filterable=True)
    parent_task_id: str = state_column(filterable=True)
    node_id: str | None = state_column(filterable=True)
    worker_id: str | None = state_column(filterable=True)
    worker_pid: int | None = state_column(filterable=True, kind=int)
    error_type: str | None = state_column(filterable=True)
    language: str | None = state_column(filterable=True, detail=True)
    required_resources: dict[str, Any] | None = state_column(
        filterable=False, detail=True
    )
    runtime_env_info: dict[str, Any] | None = state_column(
        filterable=False, detail=True
    )
    placement_group_id: str | None = state_column(filterable=True, detail=True)
    events: list[dict[str, Any]] | None = state_column(filterable=False, detail=True)
    profiling_data: dict[str, Any] | None = state_column(filterable=False, detail=True)
    creation_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)
    start_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)
    end_time_ms: int | None = state_column(filterable=False, detail=True, kind=int)
    task_log_info: dict[str, Any] | None = state_column(filterable=False, detail=True)
    error_message: str | None = state_column(filterable=False, detail=True)
    is_debugger_paused: bool | None = state_column(
        filterable=True, detail=True, kind=bool
    )
    call_site: str | None = state_column(filterable=False, detail=True)
    label_selector: dict[str, Any] | None = state_column(filterable=False, detail=True)
    fallback_strategy: Any = state_column(filterable=False, detail=True)


#: the resources the control service lists, by Ray's resource name
SCHEMAS: dict[str, type[StateSchema]] = {
    "actors": ActorState,
    "jobs": JobState,
    "placement_groups": PlacementGroupState,
    "nodes": NodeState,
    "workers": WorkerState,
    "tasks": TaskState,
}
