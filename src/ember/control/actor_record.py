"""One actor's record in the control service: what callers are told, and its state.

``ActorRecord.info`` (the protocol's ``ActorInfo``) is the only copy of what
callers learn of an actor (``get_actor_info``, ``get_named_actor``,
``list_actors``, and through them the ``ActorDiedError`` of its calls).
State changes update it in place (:meth:`ActorRecord.alive`,
:meth:`ActorRecord.restarting`, :meth:`ActorRecord.dead`), so the last
worker's ``pid`` survives a death and ``death_cause`` says why it died;
``address`` is set only while ALIVE. :meth:`ActorRecord.describe` is the copy
a reply carries.
"""

from __future__ import annotations

import asyncio

import msgspec

from ember.protocol.messages import ActorInfo, ActorSpec, Address
from ember.rpc.connection import Connection


class ActorRecord:
    """The control service's state for one actor."""

    def __init__(self, spec: ActorSpec) -> None:
        self.spec = spec
        self.info = ActorInfo(
            actor_id=spec.actor_id,
            state="PENDING",
            name=spec.name,
            namespace=spec.namespace,
            class_name=spec.class_name,
        )
        self.restarts = 0
        self.waiters: list[asyncio.Future[None]] = []
        self.node_id = b""
        self.worker_id = b""
        self.lease_id = 0
        self.worker_conn: Connection | None = None
        self.no_restart = False

    def wake(self) -> None:
        """Wake the ``get_actor_info`` long polls waiting for a change."""
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    def describe(self, with_spec: bool = False) -> ActorInfo:
        """A copy of the record for a reply (with the spec: for a handle)."""
        return msgspec.structs.replace(self.info, spec=self.spec if with_spec else None)

    def alive(self, address: Address, epoch: int, pid: int) -> None:
        """Started (epoch ``epoch``) in the worker ``pid`` at ``address``."""
        i = self.info
        i.state, i.address, i.epoch, i.pid = "ALIVE", address, epoch, pid
        i.death_cause = ""

    def restarting(self) -> None:
        """Its worker died; a new one is being started."""
        self.info.state, self.info.address = "RESTARTING", None

    def dead(self, cause: str, epoch: int | None = None) -> None:
        """DEAD with ``cause``; ``pid`` stays that of the last worker."""
        i = self.info
        i.state, i.address, i.death_cause = "DEAD", None, cause
        if epoch is not None:
            i.epoch = epoch
