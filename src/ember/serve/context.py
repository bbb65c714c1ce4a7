"""Who and where a replica is: ``serve.get_replica_context()`` and the per-request context."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass
from typing import Any

from ember.serve.exceptions import RayServeException

__all__ = ["ReplicaContext", "get_replica_context", "get_multiplexed_model_id"]


@dataclass
class ReplicaContext:
    """The replica's application, deployment and id, and the user object it runs."""

    app_name: str
    deployment: str
    replica_tag: str
    servable_object: Any
    rank: int = 0
    world_size: int = 1

    @property
    def replica_id(self) -> str:
        return self.replica_tag


_replica: ReplicaContext | None = None
#: the model id of the request being handled (``serve.get_multiplexed_model_id``)
request_model_id: contextvars.ContextVar[str] = contextvars.ContextVar(
    "serve_multiplexed_model_id", default=""
)


def set_replica_context(ctx: ReplicaContext | None) -> None:
    global _replica
    _replica = ctx


def current_replica() -> ReplicaContext | None:
    return _replica


def get_replica_context() -> ReplicaContext:
    """The context of the replica this code runs in; raises outside a replica."""
    if _replica is None:
        raise RayServeException(
            "`serve.get_replica_context()` may only be called from within a "
            "Ray Serve deployment."
        )
    return _replica


def get_multiplexed_model_id() -> str:
    """The model id the current request asked for ("" when none)."""
    return request_model_id.get()
