"""get_actor, kill, exit_actor."""

from __future__ import annotations

from ember.api.actor import ActorHandle
from ember.api.runtime_access import runtime
from ember.api.validation import check_bool, check_name
from ember.runtime import task_context


def get_actor(name: str, namespace: str | None = None) -> ActorHandle:
    """A handle to the named actor ``name`` (in ``namespace``, default the job's).

    Raises:
        ValueError: no live actor has that name.
    """
    check_name("get_actor() 'name'", name)
    if not name:
        raise ValueError(
            "Please supply a non-empty actor name, e.g. get_actor('counter')."
        )
    if namespace is not None and not isinstance(namespace, str):
        raise TypeError(
            f"namespace must be None or a string, got {type(namespace).__name__}: "
            f"{namespace!r}"
        )
    check_name("get_actor() 'namespace'", namespace, optional=True)
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
    check_bool("kill() 'no_restart'", no_restart)
    runtime().kill(actor, no_restart)


def exit_actor() -> None:
    """Exit the current actor gracefully after the current call (inside an actor only)."""
    ctx = task_context.get()
    in_actor = ctx is not None and ctx.actor_id
    if not (in_actor or task_context.process_actor.get("actor_id")):
        raise TypeError("exit_actor API is called on a non-actor worker.")
    raise SystemExit(0)
