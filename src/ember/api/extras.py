"""Ray's smaller top-level names: GPU ids, logging config, client, timeline, modes.

These are the names of ``ray`` a Ray Core program may touch besides the task,
actor and object API: ``get_gpu_ids()``, ``LoggingConfig``, the driver/worker
mode constants, ``client()`` (Ray Client is not supported: it raises with the
address form to use instead) and ``timeline()`` (needs task events, which
ember does not record yet).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ember.api.runtime_access import runtime
from ember.common.chrome_trace import chrome_trace
from ember.protocol.messages import ListStateRequest
from ember.runtime import task_context

#: Ray's worker modes (``ray.SCRIPT_MODE`` is a driver, ``ray.WORKER_MODE`` a worker).
SCRIPT_MODE = 0
WORKER_MODE = 1
LOCAL_MODE = 2

CLIENT_UNSUPPORTED = (
    "Ray Client (ray://) is not supported by ember: connect the driver to the "
    "cluster directly with init(address='HOST:PORT') (the head's control "
    "address, as printed by `ember start --head`) or init(address='auto')"
)

_ENCODINGS = ("TEXT", "JSON")
_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def get_gpu_ids() -> list[int] | list[str]:
    """The GPUs assigned to the current task or actor (``[]`` in the driver).

    Ids are ints, or strings when ``CUDA_VISIBLE_DEVICES`` named devices that way.
    """
    runtime()  # as in Ray, this needs (and starts) a connection
    ctx = task_context.get()
    resources = ctx.resources if ctx is not None else {}
    if not resources.get("GPU"):
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "")
    ids = [g.strip() for g in visible.split(",") if g.strip()]
    if all(g.isdigit() for g in ids):
        return [int(g) for g in ids]
    return ids


@dataclass
class LoggingConfig:
    """How ember's own log records are formatted (``encoding`` TEXT or JSON).

    Accepted where Ray accepts one; ember's daemons write plain text logs today.
    """

    encoding: str = "TEXT"
    log_level: str = "INFO"
    additional_log_standard_attrs: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.encoding not in _ENCODINGS:
            raise ValueError(
                f"Invalid encoding type: {self.encoding}. Valid encoding types are: "
                f"{list(_ENCODINGS)}"
            )
        if str(self.log_level).upper() not in _LEVELS:
            raise ValueError(
                f"Invalid log level: {self.log_level}. Valid levels are: {list(_LEVELS)}"
            )

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, object]) -> LoggingConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})  # type: ignore[arg-type]


def client(address: str | None = None, _deprecation_warn_enabled: bool = True) -> Any:
    """Ray Client's builder: not supported (raises ``NotImplementedError``)."""
    del address, _deprecation_warn_enabled
    raise NotImplementedError(CLIENT_UNSUPPORTED)


def timeline(filename: str | None = None) -> list[dict[str, Any]] | None:
    """The tasks run so far as Chrome trace events, as Ray's ``ray.timeline()``.

    One complete event per task attempt that ran (start and duration), one
    row per worker, grouped by node; open it in chrome://tracing or
    https://ui.perfetto.dev.  With ``filename`` the events are written there
    as JSON and None is returned.  Core workers send their task events about
    once a second, so the last second's tasks may be missing.  In local mode
    no task events are recorded: the trace is empty.
    """
    rt = runtime()
    cw = getattr(rt, "cw", None)
    trace: list[dict[str, Any]] = []
    if cw is not None:
        cw.loop.call_soon_threadsafe(cw.task_events.flush)  # ours, before we ask
        req = ListStateRequest(resource="tasks", limit=2**31 - 1, detail=True)
        reply, _ = cw.run(cw.control.call("control.list_tasks", req))
        trace = chrome_trace(reply.rows)
    if filename is None:
        return trace
    with open(filename, "w", encoding="utf-8") as f:
        json.dump(trace, f)
    return None
