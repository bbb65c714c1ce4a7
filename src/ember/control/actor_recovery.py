"""What a restarted control service makes of the actors its predecessor ran.

Every actor's spec is in storage (table ``actors``) from its creation until
it is DEAD, and, while it is ALIVE, where it runs (table ``actor_live``: its
worker, node, lease, address, epoch and pid, :class:`ActorLive`).  On start
the directory reloads them (:func:`reload`):

- an actor recorded ALIVE is ALIVE again at once (callers keep their
  handles; its calls never needed the control service) but *unconfirmed*:
  when its node registers again with the ids of its live workers, the actor
  is confirmed, or, if its worker is not among them, it died while the
  service was down and is handled as any death (restarted under
  ``max_restarts``, else DEAD);
- an actor whose node has not registered again within the grace period
  (:meth:`ActorRecovery.expire`) died with its node;
- an actor that was PENDING or RESTARTING is started again;
- a detached actor whose process died while no control service ran is
  re-created, whatever its ``max_restarts`` (as Ray's GCS fault tolerance does).
"""

from __future__ import annotations

import logging
from typing import Protocol

import msgspec

from ember.control.actor_record import ActorRecord
from ember.control.storage import Storage
from ember.protocol.messages import ActorSpec, Address

logger = logging.getLogger(__name__)

DIED_WHILE_AWAY = (
    "The actor's worker process died while the control service was down (it was "
    "not among its node's live workers when the node registered again)."
)
NODE_NOT_BACK = (
    "The actor's node did not register again after the control service restarted."
)


class ActorLive(msgspec.Struct, array_like=True):
    """Where an ALIVE actor runs, as stored in table ``actor_live``."""

    worker_id: bytes
    node_id: bytes
    lease_id: int
    address: Address
    epoch: int
    pid: int
    restarts: int


def live_record(rec: ActorRecord) -> bytes:
    """The ``actor_live`` value for an ALIVE actor."""
    assert rec.info.address is not None
    return msgspec.msgpack.encode(
        ActorLive(
            worker_id=rec.worker_id,
            node_id=rec.node_id,
            lease_id=rec.lease_id,
            address=rec.info.address,
            epoch=rec.info.epoch,
            pid=rec.info.pid,
            restarts=rec.restarts,
        )
    )


class Directory(Protocol):
    """What recovery uses of the actor directory."""

    actors: dict[bytes, ActorRecord]
    named: dict[tuple[str, str], bytes]
    storage: Storage

    def on_worker_died(
        self,
        actor_id: bytes,
        worker_id: bytes,
        reason: str,
        intended: bool,
        force_restart: bool = False,
    ) -> None: ...


class ActorRecovery:
    """The reloaded actors still waiting for their node to vouch for them."""

    def __init__(self, directory: Directory) -> None:
        self._dir = directory
        #: actor id -> record, for actors reloaded ALIVE and not yet confirmed
        self.unconfirmed: dict[bytes, ActorRecord] = {}

    def reload(self) -> list[ActorRecord]:
        """Rebuild the directory from storage; the records that must be started."""
        d = self._dir
        storage = d.storage
        live = {
            aid: msgspec.msgpack.decode(raw, type=ActorLive)
            for aid, raw in storage.scan("actor_live")
        }
        to_start = []
        for actor_id, raw in storage.scan("actors"):
            spec = msgspec.msgpack.decode(raw, type=ActorSpec)
            rec = ActorRecord(spec)
            d.actors[actor_id] = rec
            if spec.name:
                d.named[(spec.namespace, spec.name)] = actor_id
            where = live.get(actor_id)
            if where is None:
                rec.info.state = "RESTARTING" if spec.detached else "PENDING"
                to_start.append(rec)
            else:
                rec.worker_id, rec.node_id, rec.lease_id = (
                    where.worker_id,
                    where.node_id,
                    where.lease_id,
                )
                rec.restarts = where.restarts
                rec.alive(where.address, where.epoch, where.pid)
                self.unconfirmed[actor_id] = rec
        if d.actors:
            logger.info(
                "recovered %d actors (%d to confirm with their nodes, %d to start)",
                len(d.actors),
                len(self.unconfirmed),
                len(to_start),
            )
        return to_start

    def node_registered(self, node_id: bytes, live_workers: set[bytes]) -> None:
        """A node registered (again): confirm its actors, or handle their deaths."""
        for aid, rec in list(self.unconfirmed.items()):
            if rec.node_id != node_id:
                continue
            del self.unconfirmed[aid]
            if rec.worker_id not in live_workers:
                self._died(rec, DIED_WHILE_AWAY)

    def expire(self) -> None:
        """The grace period ended: actors whose node never came back died with it."""
        waiting, self.unconfirmed = self.unconfirmed, {}
        for rec in waiting.values():
            self._died(rec, NODE_NOT_BACK)

    def _died(self, rec: ActorRecord, reason: str) -> None:
        self._dir.on_worker_died(
            rec.spec.actor_id,
            rec.worker_id,
            reason,
            intended=False,
            force_restart=rec.spec.detached,
        )
