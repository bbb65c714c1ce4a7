"""What the current thread is executing (for get_runtime_context and log prefixes)."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


@dataclass
class TaskContext:
    """The task (or actor call) a thread is running."""

    task_id: bytes = b""
    job_id: bytes = b""
    name: str = ""
    actor_id: bytes = b""
    actor_class: str = ""
    resources: dict[str, float] = field(default_factory=dict)
    attempt: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


_local = threading.local()
#: the actor this process hosts (process-wide; threads of a threaded actor share it)
process_actor: dict[str, Any] = {}
#: running tasks whose cancellation was requested (``RuntimeContext.is_canceled``)
cancel_requested: set[bytes] = set()


def get() -> TaskContext | None:
    return getattr(_local, "ctx", None)


def set_current(ctx: TaskContext | None) -> None:
    _local.ctx = ctx
