"""get_actor, kill, exit_actor."""

from __future__ import annotations

from ember.api.actor import ActorHandle
from ember.api.runtime_access import local_mode, worker
from ember.protocol.messages import GetNamedActorRequest, KillActorRequest
from ember.rpc.errors import RemoteError
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
    lm = local_mode()
    if lm is not None:
        return lm.get_actor(name, namespace)
    cw = worker()
    ns = namespace if namespace is not None else cw.namespace
    try:
        info, _ = cw.run(
            cw.control.call(
                "control.get_named_actor", GetNamedActorRequest(name=name, namespace=ns)
            )
        )
    except RemoteError as err:
        if err.is_a(ValueError):
            raise ValueError(err.remote_message) from None
        raise
    spec = info.spec
    return ActorHandle(
        spec.actor_id, spec.class_name, spec.methods, spec.max_task_retries
    )


def kill(actor: ActorHandle, *, no_restart: bool = True) -> None:
    """Kill an actor at once (pending calls fail with ActorDiedError).

    With ``no_restart=False`` the actor is restarted if ``max_restarts`` allows.
    """
    lm = local_mode()
    if lm is not None:
        lm.kill(actor)
        return
    if not isinstance(actor, ActorHandle):
        raise ValueError(
            f"ember.kill() only supports actors; got {type(actor).__name__}. Use "
            "ember.cancel() for tasks."
        )
    cw = worker()
    aid = actor._actor_id_bytes
    cw.run(
        cw.control.call(
            "control.kill_actor", KillActorRequest(actor_id=aid, no_restart=no_restart)
        )
    )


def exit_actor() -> None:
    """Exit the current actor gracefully after the current call (inside an actor only)."""
    if not task_context.process_actor.get("actor_id"):
        raise TypeError("exit_actor API is called on a non-actor worker.")
    raise SystemExit(0)
