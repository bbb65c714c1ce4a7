"""The control service process: composes its tables and registers handlers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from typing import Any

import msgspec

from ember.common.aio import new_event_loop
from ember.common.config import Config
from ember.common.fdlimit import raise_nofile_limit
from ember.common.ids import JobID
from ember.common.process import (
    die_with_parent,
    setup_daemon_logging,
    signal_ready,
    token_from_env,
)
from ember.control.actors import ActorDirectory
from ember.control.placement_groups import PlacementGroups
from ember.control.storage import MemoryStorage, Storage, open_storage
from ember.protocol.messages import (
    SCHEMA,
    ActorInfo,
    Empty,
    GetClusterStatusReply,
    GetNodesReply,
    KvGetReply,
    KvPutReply,
    ListActorsReply,
    ListNamedActorsReply,
    ListPlacementGroupsReply,
    NodeDiedMessage,
    NodeInfo,
    RegisterJobReply,
    ResourceDemand,
    WaitPlacementGroupReply,
)
from ember.rpc.connection import Connection, Server
from ember.rpc.errors import RpcError
from ember.scheduler.resources import fits

logger = logging.getLogger(__name__)


class ControlService:
    """Node membership, KV, jobs and the actor directory."""

    def __init__(
        self, token: bytes, session_dir: str, storage: Storage | None = None
    ) -> None:
        self.token = token
        self.schema = SCHEMA
        self.session_dir = session_dir
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.nodes: dict[bytes, NodeInfo] = {}
        self.node_conns: dict[bytes, Connection] = {}
        #: per node: the resource shapes its lease queue could not grant yet
        self.demands: dict[bytes, list[dict[str, float]]] = {}
        self.kv: dict[tuple[str, bytes], bytes] = {}
        self.actors = ActorDirectory(self)
        self.placement_groups = PlacementGroups(self)
        self._next_job = 1
        self.jobs: dict[bytes, dict[str, Any]] = {}
        self._rr = 0
        self.config = Config.from_env()
        #: when each live node last sent a heartbeat (monotonic seconds)
        self.last_heartbeat: dict[bytes, float] = {}
        self.server = Server(token=token, schema=SCHEMA, handlers=self._handlers())
        self.stopped = asyncio.Event()
        self._load()

    def _load(self) -> None:
        """Reload what a previous control service with the same storage persisted."""
        for raw_key, value in self.storage.scan("kv"):
            ns, key = msgspec.msgpack.decode(raw_key)
            self.kv[(ns, key)] = value
        for job_id, raw in self.storage.scan("jobs"):
            job = msgspec.msgpack.decode(raw)
            if job.get("alive"):
                # Its driver was connected to the previous control service.
                job["alive"] = False
                self.storage.put("jobs", job_id, msgspec.msgpack.encode(job))
            self.jobs[job_id] = job
            self._next_job = max(self._next_job, int.from_bytes(job_id, "big") + 1)
        self.actors.load(self.storage)
        if self.kv or self.jobs or self.actors.actors:
            logger.info(
                "recovered %d KV entries, %d jobs and %d actors from storage",
                len(self.kv),
                len(self.jobs),
                len(self.actors.actors),
            )

    def _handlers(self) -> dict[str, Any]:
        return {
            "control.register_node": self.register_node,
            "control.heartbeat": self.heartbeat,
            "control.get_nodes": self.get_nodes,
            "control.kv_put": self.kv_put,
            "control.kv_get": self.kv_get,
            "control.register_job": self.register_job,
            "control.create_actor": self.create_actor,
            "control.get_actor_info": self.get_actor_info,
            "control.get_named_actor": self.get_named_actor,
            "control.list_named_actors": self.list_named_actors,
            "control.list_actors": self.list_actors,
            "control.kill_actor": self.kill_actor,
            "control.actor_died": self.actor_died,
            "control.job_finished": self.job_finished,
            "control.create_placement_group": self.create_placement_group,
            "control.remove_placement_group": self.remove_placement_group,
            "control.wait_placement_group": self.wait_placement_group,
            "control.get_placement_group": self.get_placement_group,
            "control.list_placement_groups": self.list_placement_groups,
            "control.get_cluster_status": self.get_cluster_status,
        }

    # -- nodes --------------------------------------------------------------------
    def register_node(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        info = req.info
        self.nodes[info.node_id] = info
        self.node_conns[info.node_id] = conn
        self.last_heartbeat[info.node_id] = time.monotonic()
        conn.on_close(lambda c: self._node_lost(info.node_id, c))
        logger.info("node %s registered at %s", info.node_id.hex()[:8], info.address)
        self._tell_nodes_cluster_changed()
        return Empty()

    def _tell_nodes_cluster_changed(self) -> None:
        """Node daemons refresh their cluster view (for spill-back and SPREAD) at once."""
        for c in list(self.node_conns.values()):
            if not c.is_closed():
                try:
                    c.notify("node.cluster_changed", Empty())
                except RpcError:
                    pass

    def _node_lost(self, node_id: bytes, conn: Connection) -> None:
        if self.node_conns.get(node_id) is not conn:
            return
        del self.node_conns[node_id]
        self.demands.pop(node_id, None)
        node = self.nodes.get(node_id)
        if node is not None:
            node.alive = False
            node.death_reason = node.death_reason or "the node daemon disconnected"
        conn.abort()
        self.last_heartbeat.pop(node_id, None)
        self._tell_nodes_cluster_changed()
        # Tell every client at once, so calls to that node's workers fail now
        # (a dead link sends no FIN) and their tasks are retried elsewhere.
        msg = NodeDiedMessage(node_id=node_id, reason=node.death_reason if node else "")
        for c in list(self.server.connections):
            if c is not conn and not c.is_closed():
                try:
                    c.notify("worker.node_died", msg)
                except RpcError:
                    pass
        for rec in list(self.actors.actors.values()):
            if rec.node_id == node_id and rec.worker_id:
                self.actors.on_worker_died(
                    rec.spec.actor_id,
                    rec.worker_id,
                    "the actor's node died",
                    intended=False,
                )

    async def monitor_nodes(self) -> None:
        """Declare dead the nodes that missed heartbeats for ``node_death_timeout_s``.

        A node whose machine or link died sends no FIN, so its connection looks
        open; missed heartbeats are the only sign.
        """
        timeout = self.config.node_death_timeout_s
        while True:
            await asyncio.sleep(min(timeout / 4, 1.0))
            now = time.monotonic()
            for node_id, last in list(self.last_heartbeat.items()):
                conn = self.node_conns.get(node_id)
                if conn is None or now - last <= timeout:
                    continue
                logger.warning(
                    "node %s missed heartbeats for %.1fs: declaring it dead",
                    node_id.hex()[:8],
                    now - last,
                )
                node = self.nodes.get(node_id)
                if node is not None:
                    node.death_reason = f"missed heartbeats for {now - last:.1f} s"
                self._node_lost(node_id, conn)

    def heartbeat(self, conn: Connection, req: Any, bufs: Any) -> None:
        node = self.nodes.get(req.node_id)
        self.last_heartbeat[req.node_id] = time.monotonic()
        if node is not None:
            node.available = req.available
            if req.total:
                node.resources = req.total
            self.demands[req.node_id] = list(req.pending_demands)

    def get_nodes(self, conn: Connection, req: Any, bufs: Any) -> GetNodesReply:
        return GetNodesReply(nodes=list(self.nodes.values()))

    def get_cluster_status(
        self, conn: Connection, req: Any, bufs: Any
    ) -> GetClusterStatusReply:
        """Nodes plus the pending resource demands, grouped by shape."""
        alive = [n for n in self.nodes.values() if n.alive]
        counts: dict[tuple[tuple[str, float], ...], int] = {}
        for node_id, shapes in self.demands.items():
            if node_id in self.node_conns:
                for shape in shapes:
                    key = tuple(sorted(shape.items()))
                    counts[key] = counts.get(key, 0) + 1
        demands = [
            ResourceDemand(
                resources=dict(key),
                count=n,
                infeasible=not any(fits(dict(key), node.resources) for node in alive),
            )
            for key, n in counts.items()
        ]
        path = getattr(self.storage, "path", "")
        return GetClusterStatusReply(
            nodes=list(self.nodes.values()), demands=demands, storage=path or "memory"
        )

    def pick_node_conn(self, resources: dict[str, float]) -> Connection | None:
        """A live node whose totals could hold ``resources`` (round robin)."""
        ids = [
            n for n, info in self.nodes.items() if info.alive and n in self.node_conns
        ]
        fitting = [n for n in ids if fits(resources, self.nodes[n].resources)]
        choice = fitting or ids
        if not choice:
            return None
        self._rr += 1
        return self.node_conns[choice[self._rr % len(choice)]]

    # -- kv and jobs ------------------------------------------------------------------
    def kv_put(self, conn: Connection, req: Any, bufs: Any) -> KvPutReply:
        key = (req.namespace, req.key)
        if not req.overwrite and key in self.kv:
            return KvPutReply(added=False)
        self.kv[key] = req.value
        self.storage.put("kv", msgspec.msgpack.encode(key), req.value)
        return KvPutReply(added=True)

    def kv_get(self, conn: Connection, req: Any, bufs: Any) -> KvGetReply:
        return KvGetReply(value=self.kv.get((req.namespace, req.key)))

    def register_job(self, conn: Connection, req: Any, bufs: Any) -> RegisterJobReply:
        job_id = JobID(self._next_job.to_bytes(4, "little")).binary()
        self._next_job += 1
        self.jobs[job_id] = {
            "namespace": req.namespace,
            "pid": req.driver_pid,
            "alive": True,
        }
        self.storage.put("jobs", job_id, msgspec.msgpack.encode(self.jobs[job_id]))
        conn.on_close(lambda c: self._job_done(job_id))
        return RegisterJobReply(job_id=job_id, namespace=req.namespace)

    def job_finished(self, conn: Connection, req: Any, bufs: Any) -> None:
        self._job_done(req.job_id)

    def _job_done(self, job_id: bytes) -> None:
        job = self.jobs.get(job_id)
        if job is None or not job["alive"]:
            return
        job["alive"] = False
        self.storage.put("jobs", job_id, msgspec.msgpack.encode(job))
        self.actors.on_job_finished(job_id)
        self.placement_groups.on_job_finished(job_id)

    # -- placement groups ------------------------------------------------------------
    def create_placement_group(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        self.placement_groups.create(req)
        return Empty()

    async def remove_placement_group(
        self, conn: Connection, req: Any, bufs: Any
    ) -> Empty:
        await self.placement_groups.remove(req.pg_id)
        return Empty()

    async def wait_placement_group(
        self, conn: Connection, req: Any, bufs: Any
    ) -> WaitPlacementGroupReply:
        g = await self.placement_groups.wait(req.pg_id, req.timeout_s)
        if g is None:
            return WaitPlacementGroupReply(ready=False, state="UNKNOWN")
        return WaitPlacementGroupReply(ready=g.state == "CREATED", state=g.state)

    def get_placement_group(self, conn: Connection, req: Any, bufs: Any) -> Any:
        g = (
            self.placement_groups.groups.get(req.pg_id)
            if req.pg_id
            else self.placement_groups.by_name(req.name, req.namespace)
        )
        if g is None:
            raise ValueError(
                f"Failed to look up placement group {req.name or req.pg_id.hex()!r}: it does "
                "not exist or was removed."
            )
        return g

    def list_placement_groups(self, conn: Connection, req: Any, bufs: Any) -> Any:
        return ListPlacementGroupsReply(
            groups=list(self.placement_groups.groups.values())
        )

    # -- actors ---------------------------------------------------------------------
    def create_actor(self, conn: Connection, req: Any, bufs: Any) -> ActorInfo:
        return self.actors.create(req.spec, req.get_if_exists)

    async def get_actor_info(self, conn: Connection, req: Any, bufs: Any) -> ActorInfo:
        return await self.actors.wait_info(
            req.actor_id, req.wait_after_epoch, req.timeout_s
        )

    def get_named_actor(self, conn: Connection, req: Any, bufs: Any) -> ActorInfo:
        aid = self.actors.named.get((req.namespace, req.name))
        if aid is None:
            raise ValueError(
                f"Failed to look up actor with name {req.name!r} in namespace "
                f"{req.namespace!r}. This could be because the actor was never created, was "
                "killed, or lives in another namespace."
            )
        rec = self.actors.actors[aid]
        i = rec.info
        return ActorInfo(
            actor_id=aid,
            state=i.state,
            address=i.address,
            epoch=i.epoch,
            name=i.name,
            namespace=i.namespace,
            class_name=i.class_name,
            spec=rec.spec,
        )

    def list_named_actors(
        self, conn: Connection, req: Any, bufs: Any
    ) -> ListNamedActorsReply:
        return ListNamedActorsReply(
            actors=self.actors.list_named(req.namespace, req.all_namespaces)
        )

    def list_actors(self, conn: Connection, req: Any, bufs: Any) -> ListActorsReply:
        return ListActorsReply(actors=[r.info for r in self.actors.actors.values()])

    def kill_actor(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        self.actors.kill(req.actor_id, req.no_restart)
        return Empty()

    def actor_died(self, conn: Connection, req: Any, bufs: Any) -> None:
        for rec in list(self.actors.actors.values()):
            if rec.worker_id == req.worker_id:
                self.actors.on_worker_died(
                    rec.spec.actor_id, req.worker_id, req.reason, req.intended
                )


async def _main(
    session_dir: str, unix: str, host: str, port: int, ready_fd: int, storage: str
) -> None:
    svc = ControlService(
        token_from_env(), session_dir, open_storage(storage, session_dir)
    )
    await svc.server.listen(f"unix:{unix}")
    tcp = await svc.server.listen(f"tcp:{host}:{port}")
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, svc.stopped.set)
    signal_ready(ready_fd, tcp)
    monitor = loop.create_task(svc.monitor_nodes())
    await svc.stopped.wait()
    monitor.cancel()
    svc.actors.close()
    svc.placement_groups.close()
    svc.server.close()
    svc.storage.close()
    try:
        os.unlink(unix)
    except FileNotFoundError:
        pass


def run(
    session_dir: str,
    unix: str,
    host: str,
    port: int,
    ready_fd: int,
    storage: str = "memory",
) -> None:
    """Serve until SIGTERM.  ``storage``: ``memory``, ``sqlite`` or ``sqlite:PATH``."""
    die_with_parent()
    setup_daemon_logging("control")
    raise_nofile_limit()
    loop = new_event_loop()
    try:
        loop.run_until_complete(_main(session_dir, unix, host, port, ready_fd, storage))
    finally:
        loop.close()
