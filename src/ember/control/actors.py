"""Actor directory and lifecycle: create, restart on death, kill; named actors.

Theory of operation (per actor)::

    PENDING --created--> ALIVE --died, restarts left--> RESTARTING --created--> ALIVE
       |                   |                                 |
       +----failed/killed--+--died, no restarts / killed-----+--> DEAD

``epoch`` counts starts; a caller that saw epoch ``e`` fail waits for an
info with epoch > e (the restarted actor) or DEAD.

Persistence: the specs of named and detached actors are kept in the control
service's storage (table ``actors``) until they are DEAD.  A control service
that starts on storage holding such specs reloads them: a detached actor is
reported RESTARTING (its name stays taken) and a non-detached one DEAD (its
job ended with the previous control service), each with a ``death_cause``
saying so.  Re-creating the detached ones is not implemented yet.

Each actor has one record (``control/actor_record.ActorRecord``).

What the directory needs of the rest of the control service is passed in:
a :class:`NodeLinks` (pick a node, a node's connection), the storage, and a
``connect_worker`` callable.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

import msgspec

from ember.common.aio import Supervisor
from ember.control.actor_record import ActorRecord
from ember.control.actor_recovery import ActorRecovery, live_record
from ember.protocol.messages import (
    ActorInfo,
    ActorSpec,
    Address,
    CreateActorOnWorkerRequest,
    ExitRequest,
    LeaseRequest,
    ReturnLeaseRequest,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.runtime_env.runtime_env import worker_key

if TYPE_CHECKING:
    from ember.control.storage import Storage

logger = logging.getLogger(__name__)

#: Ray's words for an actor whose owner's handles are all gone
OUT_OF_SCOPE_CAUSE = (
    "The actor is dead because all references to the actor were removed."
)
PG_REMOVED_CAUSE = (
    "The actor is dead because its placement group was removed (the actors of a "
    "removed placement group are killed and not restarted)."
)
PG_UNSCHEDULABLE_CAUSE = (
    "Could not create the actor because its associated placement group was "
    "removed.\nRequired placement group {} is removed."
)


class NodeLinks(Protocol):
    """What the actor directory sees of the cluster's nodes."""

    def pick(self, resources: dict[str, float]) -> Connection | None:
        """A live node whose totals could hold ``resources``."""
        ...

    def conn(self, node_id: bytes) -> Connection | None:
        """The live node's connection, or None."""
        ...


ConnectWorker = Callable[[str], Awaitable[Connection]]


class ActorDirectory:
    """All actors of the cluster."""

    def __init__(
        self, nodes: NodeLinks, storage: Storage, connect_worker: ConnectWorker
    ) -> None:
        self._nodes = nodes
        self.storage = storage
        self._connect_worker = connect_worker
        self.actors: dict[bytes, ActorRecord] = {}
        self.named: dict[tuple[str, str], bytes] = {}
        self._sup = Supervisor("actors")
        #: hex ids of the removed placement groups (an actor created in one is unschedulable)
        self._removed_groups: set[str] = set()
        #: actors reloaded from storage that their nodes have not confirmed yet
        self.recovery = ActorRecovery(self)

    def create(self, spec: ActorSpec, get_if_exists: bool) -> ActorInfo:
        known = self.actors.get(spec.actor_id)
        if known is not None:  # sent again after this service restarted
            return known.describe(with_spec=True)
        if spec.name:
            key = (spec.namespace, spec.name)
            existing = self.named.get(key)
            if existing is not None and self.actors[existing].info.state != "DEAD":
                if get_if_exists:
                    return self.actors[existing].describe(with_spec=True)
                raise ValueError(
                    f"The name {spec.name!r} (namespace={spec.namespace!r}) is already taken by "
                    "another actor. Pick another name, kill the existing actor, or pass "
                    "get_if_exists=True to get a handle to it."
                )
            self.named[key] = spec.actor_id
        rec = ActorRecord(spec)
        self.actors[spec.actor_id] = rec
        # Every actor, so that a restarted control service still knows it.
        self.storage.put("actors", spec.actor_id, msgspec.msgpack.encode(spec))
        group = _group_of(spec)
        if group and group in self._removed_groups:
            self._end_in_removed_group(rec)
        else:
            self._sup.spawn(self._start(rec), name="start-actor")
        return rec.describe(with_spec=True)

    async def wait_info(
        self, actor_id: bytes, after_epoch: int, timeout_s: float
    ) -> ActorInfo:
        rec = self.actors.get(actor_id)
        if rec is None:
            return ActorInfo(
                actor_id=actor_id,
                state="DEAD",
                death_cause="the actor is unknown to the control service",
            )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s if timeout_s > 0 else None
        while after_epoch >= 0 and not (
            rec.info.state == "DEAD"
            or (rec.info.state == "ALIVE" and rec.info.epoch > after_epoch)
        ):
            w: asyncio.Future[None] = loop.create_future()
            rec.waiters.append(w)
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                break
            try:
                await asyncio.wait_for(w, remaining)
            except TimeoutError:
                break
        return rec.describe()

    def named_info(self, namespace: str, name: str) -> ActorInfo:
        """The named actor's record, with its spec (for a handle).

        Raises:
            ValueError: no live actor has that name in that namespace.
        """
        aid = self.named.get((namespace, name))
        if aid is None:
            raise ValueError(
                f"Failed to look up actor with name {name!r} in namespace "
                f"{namespace!r}. This could be because the actor was never created, was "
                "killed, or lives in another namespace."
            )
        return self.actors[aid].describe(with_spec=True)

    def infos(self) -> list[ActorInfo]:
        """Every actor's record (without specs), for listings."""
        return [r.describe() for r in self.actors.values()]

    async def _start(self, rec: ActorRecord) -> None:
        spec = rec.spec
        resources = dict(spec.resources)
        while True:
            try:
                await self._start_once(rec, resources)
                return
            except (RpcError, OSError) as exc:
                if rec.info.state == "DEAD":
                    return
                logger.warning(
                    "starting actor %s failed (%s); retrying", spec.class_name, exc
                )
                await asyncio.sleep(0.2)

    async def _lease(
        self, rec: ActorRecord, resources: dict[str, float]
    ) -> tuple[Connection | None, Any]:
        """A worker lease for the actor, following spill-backs; waits while infeasible."""
        spec = rec.spec
        strategy = dict(spec.scheduling)
        node_conn = None
        if strategy.get("type") == "node_affinity":
            node_conn = self._nodes.conn(bytes.fromhex(strategy["node_id"]))
        node_conn = node_conn or self._nodes.pick(resources)
        spilled = False
        warned = False
        while rec.info.state != "DEAD":
            if node_conn is None:
                raise RpcError("no node is alive")
            reply, _ = await node_conn.call(
                "node.request_worker_lease",
                LeaseRequest(
                    resources=resources,
                    job_id=spec.job_id,
                    name=spec.class_name,
                    for_actor=True,
                    env_key=worker_key(spec.env_vars, spec.runtime_env),
                    env_vars=spec.env_vars,
                    strategy=strategy,
                    spilled=spilled,
                    retriable=spec.max_restarts != 0,
                    owner_id=spec.owner.worker_id if spec.owner else b"",
                    runtime_env=spec.runtime_env,
                ),
            )
            if reply.worker is not None:
                return node_conn, reply
            if reply.runtime_env_error:
                self._mark_dead(
                    rec,
                    "the actor's runtime environment could not be set up "
                    f"(RuntimeEnvSetupError): {reply.runtime_env_error}",
                )
                return None, None
            if reply.unschedulable:
                self._mark_dead(
                    rec, f"the actor cannot be scheduled: {reply.unschedulable}"
                )
                return None, None
            if reply.spillback:
                node_conn = self._nodes.conn(reply.spillback_node)
                spilled = True
                continue
            if not warned:
                warned = True
                logger.warning(
                    "actor %s asks for %s, which no node can provide; it stays pending "
                    "until such a node joins",
                    spec.class_name,
                    resources,
                )
            await asyncio.sleep(1.0)
            node_conn, spilled = self._nodes.pick(resources), False
        return None, None

    async def _start_once(self, rec: ActorRecord, resources: dict[str, float]) -> None:
        spec = rec.spec
        node_conn, reply = await self._lease(rec, resources)
        if node_conn is None or reply is None:
            return
        if rec.info.state == "DEAD":
            node_conn.notify(
                "node.return_worker_lease", ReturnLeaseRequest(lease_id=reply.lease_id)
            )
            return
        rec.lease_id = reply.lease_id
        rec.node_id = reply.worker.node_id
        rec.worker_id = reply.worker.worker_id
        unix = reply.worker.unix
        addr = (
            unix
            if unix and os.path.exists(unix.removeprefix("unix:"))
            else reply.worker.tcp
        )
        conn = await self._connect_worker(addr)
        rec.worker_conn = conn
        epoch = rec.info.epoch + 1
        res, _ = await conn.call(
            "worker.create_actor",
            CreateActorOnWorkerRequest(
                spec=spec, epoch=epoch, gpu_ids=list(reply.assigned.get("GPU", []))
            ),
        )
        if rec.info.state == "DEAD":  # killed while starting
            conn.notify("worker.exit", ExitRequest(force=True, reason="actor killed"))
            return
        if res.ok:
            rec.alive(reply.worker, epoch, reply.pid)
            self.storage.put("actor_live", spec.actor_id, live_record(rec))
        else:
            rec.info.pid = reply.pid
            rec.info.init_failed = True  # ActorDiedError.actor_init_failed
            rec.dead(res.error_text or "the actor's constructor failed", epoch)
            self._unname(rec)
            conn.notify(
                "worker.exit", ExitRequest(force=False, reason="constructor failed")
            )
        rec.wake()

    def on_worker_died(
        self,
        actor_id: bytes,
        worker_id: bytes,
        reason: str,
        intended: bool,
        force_restart: bool = False,
    ) -> None:
        rec = self.actors.get(actor_id)
        if rec is None or rec.worker_id != worker_id or rec.info.state == "DEAD":
            return
        self.recovery.unconfirmed.pop(actor_id, None)
        self.storage.delete("actor_live", actor_id)
        spec = rec.spec
        can_restart = force_restart or (
            not rec.no_restart
            and not intended
            and (spec.max_restarts == -1 or rec.restarts < spec.max_restarts)
        )
        if can_restart:
            rec.restarts += 1
            rec.restarting()
            rec.worker_id = b""
            self._sup.spawn(self._start(rec), name="restart-actor")
        else:
            self._mark_dead(rec, reason)

    def on_worker_exit(self, worker_id: bytes, reason: str, intended: bool) -> None:
        """A worker process exited: the actor it hosted died."""
        for rec in list(self.actors.values()):
            if rec.worker_id == worker_id:
                self.on_worker_died(rec.spec.actor_id, worker_id, reason, intended)

    def on_node_died(self, node_id: bytes) -> None:
        """A node died: so did every actor on it."""
        for rec in list(self.actors.values()):
            if rec.node_id == node_id and rec.worker_id:
                self.on_worker_died(
                    rec.spec.actor_id,
                    rec.worker_id,
                    "the actor's node died",
                    intended=False,
                )

    def _mark_dead(self, rec: ActorRecord, reason: str) -> None:
        rec.dead(reason)
        self._unname(rec)
        rec.wake()

    def load(self) -> None:
        """Reload the actors a previous control service stored (``actor_recovery``)."""
        for rec in self.recovery.reload():
            self._sup.spawn(self._start(rec), name="start-actor")

    def _unname(self, rec: ActorRecord) -> None:
        """The actor is DEAD: free its name and drop its stored records."""
        self.storage.delete("actors", rec.spec.actor_id)
        self.storage.delete("actor_live", rec.spec.actor_id)
        self.recovery.unconfirmed.pop(rec.spec.actor_id, None)
        key = (rec.spec.namespace, rec.spec.name)
        if rec.spec.name and self.named.get(key) == rec.spec.actor_id:
            del self.named[key]

    def kill(self, actor_id: bytes, no_restart: bool, cause: str | None = None) -> None:
        """Kill the actor (``ember.kill``, or with ``cause``: its owner dropped it)."""
        rec = self.actors.get(actor_id)
        if rec is None or rec.info.state == "DEAD":
            return
        address = rec.info.address
        if no_restart:
            rec.no_restart = True
            conn = rec.worker_conn
            self._mark_dead(
                rec, cause or "The actor was killed by ember.kill() (ray.kill)."
            )
        else:
            conn = rec.worker_conn
        if conn is not None and not conn.is_closed():
            try:
                conn.notify("worker.exit", ExitRequest(force=True, reason="killed"))
            except RpcError:
                pass
        elif conn is None and address is not None:
            # Recovered after a restart of this service: no connection to it yet.
            self._sup.spawn(self._exit_at(address), name="kill-actor")

    async def _exit_at(self, address: Address) -> None:
        unix = address.unix
        target = (
            unix if unix and os.path.exists(unix.removeprefix("unix:")) else address.tcp
        )
        conn = await self._connect_worker(target)
        try:
            conn.notify("worker.exit", ExitRequest(force=True, reason="killed"))
            await conn.drain()
        finally:
            conn.close()

    def placement_group_removed(self, pg_id: bytes) -> None:
        """A placement group was removed: its actors die (Ray kills them, no restart)."""
        pg_hex = pg_id.hex()
        self._removed_groups.add(pg_hex)
        for rec in list(self.actors.values()):
            if _group_of(rec.spec) == pg_hex and rec.info.state != "DEAD":
                self._end_in_removed_group(rec)

    def _end_in_removed_group(self, rec: ActorRecord) -> None:
        rec.no_restart = True
        conn = rec.worker_conn
        if rec.info.epoch > 0:  # it was started: it dies
            self._mark_dead(rec, PG_REMOVED_CAUSE)
        else:  # never started: it can never be scheduled
            rec.info.unschedulable = True
            self._mark_dead(rec, PG_UNSCHEDULABLE_CAUSE.format(_group_of(rec.spec)))
        if conn is not None and not conn.is_closed():
            try:
                conn.notify(
                    "worker.exit",
                    ExitRequest(force=True, reason="its placement group was removed"),
                )
            except RpcError:
                pass

    def on_job_finished(self, job_id: bytes) -> None:
        for rec in list(self.actors.values()):
            if rec.spec.job_id == job_id and not rec.spec.detached:
                self.kill(rec.spec.actor_id, no_restart=True)
                if rec.info.state == "DEAD":
                    rec.info.death_cause = "the job that owned the actor finished"

    def list_named(self, namespace: str, all_namespaces: bool) -> list[dict[str, str]]:
        return [
            {"name": name, "namespace": ns}
            for (ns, name), _ in self.named.items()
            if all_namespaces or ns == namespace
        ]

    def close(self) -> None:
        self._sup.close()


def _group_of(spec: ActorSpec) -> str:
    """The hex id of the placement group the actor is scheduled into, or ""."""
    s = spec.scheduling
    return str(s.get("pg_id", "")) if s.get("type") == "placement_group" else ""
