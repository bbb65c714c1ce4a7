"""Ray-compatible path ``ember.actor`` (ActorHandle, ActorClass, exit_actor)."""

from __future__ import annotations

from ember.api.actor import (
    ActorClass as ActorClass,
    ActorHandle as ActorHandle,
    ActorMethod as ActorMethod,
    ActorProxy as ActorProxy,
    method as method,
)
from ember.api.actor_ops import exit_actor as exit_actor

__all__ = [
    "ActorClass",
    "ActorHandle",
    "ActorMethod",
    "ActorProxy",
    "exit_actor",
    "method",
]
