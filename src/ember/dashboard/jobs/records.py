"""A submitted job's record: its fields, its status changes, its JSON forms (pure).

One :class:`JobRecord` per submission, kept by ``store.py`` as JSON in the
control service's KV. Besides Ray's ``JobInfo`` fields it keeps what the
job server needs to supervise the job: the entrypoint's pid (its process
group), the dashboard process that runs it (``owner``), and the driver's
job id once the driver registered.

Status changes follow Ray: PENDING -> RUNNING -> SUCCEEDED | FAILED |
STOPPED (PENDING may go straight to an end); a terminal record never
changes again (:meth:`JobRecord.finish` refuses, so two racing writers
cannot turn a STOPPED job into FAILED).
"""

from __future__ import annotations

import dataclasses
import json
import secrets
import string
from dataclasses import dataclass, field
from typing import Any

from ember.job_submission.models import TERMINAL, JobInfo, default_message

#: Ray's alphabet for submission ids (no I, l, o, O, 0)
_ALPHABET = "".join(sorted(set(string.ascii_letters + string.digits) - set("IloO0")))
MAX_ID_CHARS = 200
MAX_ENTRYPOINT_CHARS = 100_000


def new_submission_id() -> str:
    """``raysubmit_`` and 16 random characters, as Ray names submissions."""
    return "raysubmit_" + "".join(secrets.choice(_ALPHABET) for _ in range(16))


@dataclass
class JobRecord:
    """One submission (see the module docstring)."""

    submission_id: str
    entrypoint: str
    status: str = "PENDING"
    message: str | None = None
    error_type: str | None = None
    start_time: int | None = None
    end_time: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    runtime_env: dict[str, Any] = field(default_factory=dict)
    entrypoint_num_cpus: float | None = None
    entrypoint_num_gpus: float | None = None
    entrypoint_memory: int | None = None
    entrypoint_resources: dict[str, float] | None = None
    driver_node_id: str | None = None
    driver_exit_code: int | None = None
    #: the driver's job id and process, once it registered with the cluster
    job_id: str | None = None
    driver_info: dict[str, str] | None = None
    #: the entrypoint's pid (= its process group) while it runs
    pid: int | None = None
    #: which dashboard process supervises it ("<pid>:<random>")
    owner: str = ""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def start(self, pid: int, owner: str, now_ms: int) -> None:
        self._check_open("RUNNING")
        self.status, self.pid, self.owner = "RUNNING", pid, owner
        self.message = None
        self.start_time = self.start_time or now_ms

    def finish(
        self,
        status: str,
        now_ms: int,
        message: str | None = None,
        exit_code: int | None = None,
        error_type: str | None = None,
    ) -> None:
        """End the job (``status`` one of the terminal ones)."""
        if status not in TERMINAL:
            raise ValueError(f"{status} is not a terminal job status")
        self._check_open(status)
        self.status, self.message, self.end_time = status, message, now_ms
        self.driver_exit_code = exit_code
        self.error_type = error_type

    def _check_open(self, status: str) -> None:
        if self.terminal:
            raise RuntimeError(
                f"Attempted to change job status from a terminal state: "
                f"{self.status} -> {status}"
            )

    def info(self) -> JobInfo:
        """Ray's ``JobInfo`` of this record."""
        fields = {
            k: v
            for k, v in self.to_json().items()
            if k in {f.name for f in dataclasses.fields(JobInfo)}
        }
        return JobInfo(**fields)

    def details(self) -> dict[str, Any]:
        """Ray's ``JobDetails`` JSON (what ``GET /api/jobs/{id}`` answers)."""
        return {
            "type": "SUBMISSION",
            "job_id": self.job_id,
            "submission_id": self.submission_id,
            "driver_info": self.driver_info,
            "status": self.status,
            "entrypoint": self.entrypoint,
            "message": self.message or default_message(self.status, self.to_json()),
            "error_type": self.error_type,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "metadata": self.metadata,
            "runtime_env": self.runtime_env,
            "driver_agent_http_address": None,
            "driver_node_id": self.driver_node_id,
            "driver_exit_code": self.driver_exit_code,
        }

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> JobRecord:
        raw = json.loads(data)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in names})


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value)}")
    if value < 0:
        raise ValueError(f"{name} must be non-negative, got {value}")
    return value


def _str_dict(name: str, value: Any, numbers: bool = False) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(f"{name} must be a dict, got {type(value)}")
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(f"{name} keys must be strings, got {type(k)}")
        if numbers:
            _number(f"{name}[{k!r}]", v)
        elif not isinstance(v, str):
            raise TypeError(f"{name} values must be strings, got {type(v)}")
    return dict(value)


def parse_submit(body: Any) -> dict[str, Any]:
    """The checked fields of a ``POST /api/jobs/`` body (Ray's ``JobSubmitRequest``).

    Raises:
        TypeError / ValueError: a field of the wrong type or value (answered 400).
    """
    if not isinstance(body, dict):
        raise TypeError(f"the request body must be a JSON object, got {type(body)}")
    known = {
        "entrypoint", "submission_id", "job_id", "runtime_env", "metadata",
        "entrypoint_num_cpus", "entrypoint_num_gpus", "entrypoint_memory",
        "entrypoint_resources", "entrypoint_label_selector",
    }  # fmt: skip
    unknown = sorted(set(body) - known)
    if unknown:
        raise TypeError(f"unexpected fields in the job submission: {unknown}")
    entrypoint = body.get("entrypoint")
    if not isinstance(entrypoint, str):
        raise TypeError(f"entrypoint must be a string, got {type(entrypoint)}")
    if not entrypoint.strip() or len(entrypoint) > MAX_ENTRYPOINT_CHARS:
        raise ValueError(
            f"entrypoint must be a non-empty command of at most "
            f"{MAX_ENTRYPOINT_CHARS} characters"
        )
    sid = body.get("submission_id") or body.get("job_id")
    if sid is not None:
        if not isinstance(sid, str):
            raise TypeError(f"submission_id must be a string, got {type(sid)}")
        if not sid or len(sid) > MAX_ID_CHARS or not sid.isprintable() or "/" in sid:
            raise ValueError(
                f"submission_id must be 1-{MAX_ID_CHARS} printable characters "
                f"without '/', got {sid!r}"
            )
    env = body.get("runtime_env")
    if env is not None and not isinstance(env, dict):
        raise TypeError(f"runtime_env must be a dict, got {type(env)}")
    memory = body.get("entrypoint_memory")
    if memory is not None and (isinstance(memory, bool) or not isinstance(memory, int)):
        raise TypeError(f"entrypoint_memory must be an integer, got {type(memory)}")
    if body.get("entrypoint_label_selector"):
        raise ValueError(
            "entrypoint_label_selector is not supported by ember's job server: "
            "entrypoints run on the head node"
        )
    return {
        "entrypoint": entrypoint,
        "submission_id": sid,
        "runtime_env": dict(env or {}),
        "metadata": _str_dict("metadata", body.get("metadata")) or {},
        "entrypoint_num_cpus": _number("entrypoint_num_cpus", body.get("entrypoint_num_cpus")),
        "entrypoint_num_gpus": _number("entrypoint_num_gpus", body.get("entrypoint_num_gpus")),
        "entrypoint_memory": _number("entrypoint_memory", memory),
        "entrypoint_resources": _str_dict(
            "entrypoint_resources", body.get("entrypoint_resources"), numbers=True
        ),
    }  # fmt: skip


def wanted_resources(record: JobRecord) -> dict[str, float]:
    """The resources the entrypoint asks the cluster to have (none by default)."""
    want = dict(record.entrypoint_resources or {})
    for key, value in (
        ("CPU", record.entrypoint_num_cpus),
        ("GPU", record.entrypoint_num_gpus),
        ("memory", record.entrypoint_memory),
    ):
        if value:
            want[key] = float(value)
    return {k: float(v) for k, v in want.items() if v}


def missing_resources(
    want: dict[str, float], nodes: list[dict[str, float]]
) -> dict[str, float]:
    """What no single node's totals provide of ``want`` (empty: some node fits)."""
    if not want:
        return {}
    best: dict[str, float] | None = None
    for totals in nodes:
        short = {k: v for k, v in want.items() if totals.get(k, 0.0) + 1e-9 < v}
        if not short:
            return {}
        if best is None or len(short) < len(best):
            best = short
    return best if best is not None else dict(want)


REDACTED = "<redacted>"


def redacted(details: dict[str, Any]) -> dict[str, Any]:
    """``details`` with its runtime_env's env_vars values masked (keys kept), as
    Ray's dashboard answers a browser: secrets passed in env_vars stay out of pages."""
    env = details.get("runtime_env")
    if not isinstance(env, dict) or not isinstance(env.get("env_vars"), dict):
        return details
    masked = dict.fromkeys(env["env_vars"], REDACTED)
    return {**details, "runtime_env": {**env, "env_vars": masked}}
