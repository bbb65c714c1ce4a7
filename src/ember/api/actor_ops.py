"""get_actor, kill, exit_actor."""

from __future__ import annotations

from ember.api.actor import ActorHandle
from ember.api.runtime_access import runtime
from ember.runtime import task_context


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """A handle to the named actor ``name`` (in ``namespace``, default the job's).

    Raises:
        ValueError: no live actor has that name.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(
            "Please supply a non-empty actor name, e.g. get_actor('counter')."
        )
    handle: ActorHandle = runtime().get_actor(name, namespace)
    return handle


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """Kill an actor at once (pending calls fail with ActorDiedError).

    With ``no_restart=False`` the actor is restarted if ``max_restarts`` allows.
    """
    if not isinstance(actor, ActorHandle):
        raise ValueError(
            f"ember.kill() only supports actors; got {type(actor).__name__}. Use "
            "ember.cancel() for tasks."
        )
    runtime().kill(actor, no_restart)


def exit_actor() -> None:
    """Exit the current actor gracefully after the current call (inside an actor only)."""
    ctx = task_context.get()
    in_actor = ctx is not None and ctx.actor_id
    if not (in_actor or task_context.process_actor.get("actor_id")):
        raise TypeError("exit_actor API is called on a non-actor worker.")
    raise SystemExit(0)
