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
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import TYPE_CHECKING, Any

import msgspec

from ember.common.aio import Supervisor
from ember.protocol.messages import (
    ActorInfo,
    ActorSpec,
    CreateActorOnWorkerRequest,
    ExitRequest,
    LeaseRequest,
    ReturnLeaseRequest,
)
from ember.rpc.connection import Connection, connect
from ember.rpc.errors import RpcError

if TYPE_CHECKING:
    from ember.control.service import ControlService
    from ember.control.storage import Storage

logger = logging.getLogger(__name__)

RELOADED_DETACHED_CAUSE = (
    "The control service restarted; this detached actor was recovered from its "
    "storage and waits to be re-created (not implemented yet: kill it and create it "
    "again)."
)
RELOADED_DEAD_CAUSE = (
    "The control service restarted, which ended the job that owned this actor."
)


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
        waiters, self.waiters = self.waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)


class ActorDirectory:
    """All actors of the cluster."""

    def __init__(self, service: ControlService) -> None:
        self._svc = service
        self.actors: dict[bytes, ActorRecord] = {}
        self.named: dict[tuple[str, str], bytes] = {}
        self._sup = Supervisor("actors")

    def create(self, spec: ActorSpec, get_if_exists: bool) -> ActorInfo:
        if spec.name:
            key = (spec.namespace, spec.name)
            existing = self.named.get(key)
            if existing is not None and self.actors[existing].info.state != "DEAD":
                if get_if_exists:
                    rec = self.actors[existing]
                    return _with_spec(rec)
                raise ValueError(
                    f"The name {spec.name!r} (namespace={spec.namespace!r}) is already taken by "
                    "another actor. Pick another name, kill the existing actor, or pass "
                    "get_if_exists=True to get a handle to it."
                )
            self.named[key] = spec.actor_id
        rec = ActorRecord(spec)
        self.actors[spec.actor_id] = rec
        if spec.name or spec.detached:
            self._svc.storage.put("actors", spec.actor_id, msgspec.msgpack.encode(spec))
        self._sup.spawn(self._start(rec), name="start-actor")
        return _with_spec(rec)

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
        return rec.info

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
            node_conn = self._svc.node_conns.get(bytes.fromhex(strategy["node_id"]))
        node_conn = node_conn or self._svc.pick_node_conn(resources)
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
                    env_key=_env_key(spec.env_vars),
                    env_vars=spec.env_vars,
                    strategy=strategy,
                    spilled=spilled,
                ),
            )
            if reply.worker is not None:
                return node_conn, reply
            if reply.unschedulable:
                self._mark_dead(
                    rec, f"the actor cannot be scheduled: {reply.unschedulable}"
                )
                return None, None
            if reply.spillback:
                node_conn = self._svc.node_conns.get(reply.spillback_node)
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
            node_conn, spilled = self._svc.pick_node_conn(resources), False
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
        conn = await connect(addr, token=self._svc.token, schema=self._svc.schema)
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
            rec.info = ActorInfo(
                actor_id=spec.actor_id,
                state="ALIVE",
                address=reply.worker,
                epoch=epoch,
                name=spec.name,
                namespace=spec.namespace,
                class_name=spec.class_name,
                pid=reply.pid,
            )
        else:
            rec.info = ActorInfo(
                actor_id=spec.actor_id,
                state="DEAD",
                epoch=epoch,
                death_cause=res.error_text or "the actor's constructor failed",
                name=spec.name,
                namespace=spec.namespace,
                class_name=spec.class_name,
            )
            self._unname(rec)
            conn.notify(
                "worker.exit", ExitRequest(force=False, reason="constructor failed")
            )
        rec.wake()

    def on_worker_died(
        self, actor_id: bytes, worker_id: bytes, reason: str, intended: bool
    ) -> None:
        rec = self.actors.get(actor_id)
        if rec is None or rec.worker_id != worker_id or rec.info.state == "DEAD":
            return
        spec = rec.spec
        can_restart = (
            not rec.no_restart
            and not intended
            and (spec.max_restarts == -1 or rec.restarts < spec.max_restarts)
        )
        if can_restart:
            rec.restarts += 1
            rec.info = ActorInfo(
                actor_id=spec.actor_id,
                state="RESTARTING",
                epoch=rec.info.epoch,
                name=spec.name,
                namespace=spec.namespace,
                class_name=spec.class_name,
            )
            rec.worker_id = b""
            self._sup.spawn(self._start(rec), name="restart-actor")
        else:
            self._mark_dead(rec, reason)

    def _mark_dead(self, rec: ActorRecord, reason: str) -> None:
        spec = rec.spec
        rec.info = ActorInfo(
            actor_id=spec.actor_id,
            state="DEAD",
            epoch=rec.info.epoch,
            death_cause=reason,
            name=spec.name,
            namespace=spec.namespace,
            class_name=spec.class_name,
        )
        self._unname(rec)
        rec.wake()

    def load(self, storage: Storage) -> None:
        """Reload the named and detached actors a previous control service stored."""
        for actor_id, raw in storage.scan("actors"):
            spec = msgspec.msgpack.decode(raw, type=ActorSpec)
            rec = ActorRecord(spec)
            self.actors[actor_id] = rec
            if spec.detached:
                rec.info.state = "RESTARTING"
                rec.info.death_cause = RELOADED_DETACHED_CAUSE
                if spec.name:
                    self.named[(spec.namespace, spec.name)] = actor_id
            else:
                rec.info.state = "DEAD"
                rec.info.death_cause = RELOADED_DEAD_CAUSE
                storage.delete("actors", actor_id)
            logger.warning(
                "recovered actor %s (%s) as %s",
                spec.name or actor_id.hex()[:8],
                spec.class_name,
                rec.info.state,
            )

    def _unname(self, rec: ActorRecord) -> None:
        """The actor is DEAD: free its name and drop its stored spec."""
        if rec.spec.name or rec.spec.detached:
            self._svc.storage.delete("actors", rec.spec.actor_id)
        key = (rec.spec.namespace, rec.spec.name)
        if rec.spec.name and self.named.get(key) == rec.spec.actor_id:
            del self.named[key]

    def kill(self, actor_id: bytes, no_restart: bool) -> None:
        rec = self.actors.get(actor_id)
        if rec is None or rec.info.state == "DEAD":
            return
        if no_restart:
            rec.no_restart = True
            conn = rec.worker_conn
            self._mark_dead(rec, "The actor was killed by ember.kill() (ray.kill).")
        else:
            conn = rec.worker_conn
        if conn is not None and not conn.is_closed():
            try:
                conn.notify("worker.exit", ExitRequest(force=True, reason="killed"))
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


def _with_spec(rec: ActorRecord) -> ActorInfo:
    i = rec.info
    return ActorInfo(
        actor_id=i.actor_id,
        state=i.state,
        address=i.address,
        epoch=i.epoch,
        death_cause=i.death_cause,
        name=i.name,
        namespace=i.namespace,
        class_name=i.class_name,
        pid=i.pid,
        spec=rec.spec,
    )


def _env_key(env_vars: dict[str, Any]) -> str:
    return repr(sorted(env_vars.items())) if env_vars else ""
