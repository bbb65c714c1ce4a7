"""What the current thread is executing (for get_runtime_context and log prefixes)."""

from __future__ import annotations

import contextvars
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
#: the actor call this context runs (a context variable, not a thread-local: the
#: calls of an async actor share one thread), so the tasks and calls it submits
#: are known as its children (``ember.cancel(recursive=True)``)
current_call: contextvars.ContextVar[bytes] = contextvars.ContextVar(
    "ember_current_call", default=b""
)
#: running actor call id -> the ids of the tasks and actor calls it submitted
children: dict[bytes, list[bytes]] = {}


def note_child(task_id: bytes) -> None:
    """Any thread: ``task_id`` was submitted; remember it under the running actor call."""
    parent = current_call.get()
    if parent:
        children.setdefault(parent, []).append(task_id)


def get() -> TaskContext | None:
    return getattr(_local, "ctx", None)


def set_current(ctx: TaskContext | None) -> None:
    _local.ctx = ctx
