"""What the Jobs API talks about: a job's status, its record and its details (Ray's shapes).

``JobStatus``, ``JobInfo``, ``JobDetails``, ``JobType`` and ``DriverInfo``
have Ray 2.60's names, fields and JSON forms, so a script written against
``ray.job_submission`` reads ember's answers the same way. The job server
(``ember.dashboard.jobs``) and the client share these definitions.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: a JSON object (named so that classes with a ``dict()`` method can say it)
JsonDict = dict[str, Any]
StrDict = dict[str, str]


class JobStatus(StrEnum):
    """Where a submitted job is: waiting, running, or one of three ends."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    STOPPED = "STOPPED"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"

    def __str__(self) -> str:
        return str(self.value)

    def is_terminal(self) -> bool:
        """Whether the job can change no more (STOPPED, SUCCEEDED or FAILED)."""
        return self.value in TERMINAL


TERMINAL = frozenset({"STOPPED", "SUCCEEDED", "FAILED"})


class JobErrorType(StrEnum):
    """Why a job failed: its own command, or the machinery around it."""

    RUNTIME_ENV_SETUP_FAILURE = "RUNTIME_ENV_SETUP_FAILURE"
    JOB_SUPERVISOR_ACTOR_START_TIMEOUT = "JOB_SUPERVISOR_ACTOR_START_TIMEOUT"
    JOB_SUPERVISOR_ACTOR_START_FAILURE = "JOB_SUPERVISOR_ACTOR_START_FAILURE"
    JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE = "JOB_SUPERVISOR_ACTOR_UNSCHEDULABLE"
    JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE = "JOB_SUPERVISOR_ACTOR_UNKNOWN_FAILURE"
    JOB_SUPERVISOR_ACTOR_DIED = "JOB_SUPERVISOR_ACTOR_DIED"
    JOB_ENTRYPOINT_COMMAND_START_ERROR = "JOB_ENTRYPOINT_COMMAND_START_ERROR"
    JOB_ENTRYPOINT_COMMAND_ERROR = "JOB_ENTRYPOINT_COMMAND_ERROR"


class JobType(StrEnum):
    """A job submitted through the Jobs API, or a driver started by hand."""

    SUBMISSION = "SUBMISSION"
    DRIVER = "DRIVER"


def default_message(status: str, info: dict[str, Any]) -> str:
    """The message of a job whose record has none (Ray's wording)."""
    if status == "PENDING":
        text = "Job has not started yet."
        wants = (info.get(k) for k in ("entrypoint_num_cpus", "entrypoint_num_gpus"))
        if (
            any((v or 0) > 0 for v in wants)
            or (info.get("entrypoint_memory") or 0) > 0
            or info.get("entrypoint_resources") not in (None, {})
        ):
            text += (
                " It may be waiting for resources "
                "(CPUs, GPUs, memory, custom resources) to become available."
            )
        if info.get("runtime_env") not in (None, {}):
            text += " It may be waiting for the runtime environment to be set up."
        return text
    return {
        "RUNNING": "Job is currently running.",
        "STOPPED": "Job was intentionally stopped.",
        "SUCCEEDED": "Job finished successfully.",
        "FAILED": "Job failed.",
    }.get(status, "")


@dataclass
class JobInfo:
    """A submitted job's record (Ray's ``JobInfo``)."""

    status: JobStatus
    entrypoint: str
    message: str | None = None
    error_type: JobErrorType | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict[str, str] | None = None
    runtime_env: dict[str, Any] | None = None
    entrypoint_num_cpus: int | float | None = None
    entrypoint_num_gpus: int | float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None

    def __post_init__(self) -> None:
        self.status = JobStatus(self.status)
        if isinstance(self.error_type, str):
            self.error_type = JobErrorType(self.error_type)
        if self.message is None:
            self.message = default_message(self.status.value, dataclasses.asdict(self))

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; ``runtime_env`` travels as ``runtime_env_json``."""
        out = dataclasses.asdict(self)
        out["status"] = str(self.status)
        out["error_type"] = self.error_type.value if self.error_type else None
        env = out.pop("runtime_env")
        if env is not None:
            out["runtime_env_json"] = json.dumps(env)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobInfo:
        data = dict(data)
        env = data.pop("runtime_env_json", None)
        if env is not None:
            data["runtime_env"] = json.loads(env)
        return cls(**_known(cls, data))


@dataclass
class DriverInfo:
    """The driver process of a job: its worker id, node IP and pid."""

    id: str
    node_ip_address: str
    pid: str

    def dict(self) -> JsonDict:
        return dataclasses.asdict(self)


@dataclass(init=False)
class JobDetails:
    """A job with its driver and submission details (Ray's ``JobDetails``)."""

    type: JobType
    status: JobStatus
    entrypoint: str
    job_id: str | None = None
    submission_id: str | None = None
    driver_info: DriverInfo | None = None
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: StrDict | None = None
    runtime_env: JsonDict | None = None
    driver_agent_http_address: str | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None
    #: fields a newer server sent that this client does not know
    extra: JsonDict = field(default_factory=JsonDict, repr=False, compare=False)

    def __init__(self, **fields: Any) -> None:
        known = {f.name for f in dataclasses.fields(self)} - {"extra"}
        for name in ("type", "status", "entrypoint"):
            if name not in fields:
                raise TypeError(f"JobDetails needs the field {name!r}")
        for f in dataclasses.fields(self):
            if f.name in known:
                default = None if f.default is dataclasses.MISSING else f.default
                setattr(self, f.name, fields.get(f.name, default))
        self.extra = {k: v for k, v in fields.items() if k not in known}
        self.type = JobType(self.type)
        self.status = JobStatus(self.status)
        if isinstance(self.driver_info, dict):
            self.driver_info = DriverInfo(**_known(DriverInfo, self.driver_info))

    def dict(self) -> JsonDict:
        """The JSON form (what ``GET /api/jobs/{id}`` answers)."""
        out = {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if f.name != "extra"
        }
        out["type"] = self.type.value
        out["status"] = self.status.value
        out["driver_info"] = self.driver_info.dict() if self.driver_info else None
        return out

    model_dump = dict


def _known(cls: Any, data: dict[str, Any]) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(cls)}
    return {k: v for k, v in data.items() if k in names}
