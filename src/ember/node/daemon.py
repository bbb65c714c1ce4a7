"""The node daemon process: leases, worker pool, object store, log forwarding."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from collections import Counter
from typing import Any

from ember.common.aio import Supervisor, new_event_loop
from ember.common.config import Config
from ember.common.fdlimit import raise_nofile_limit
from ember.common.ids import random_id
from ember.common.process import (
    TOKEN_ENV,
    die_with_parent,
    setup_daemon_logging,
    signal_ready,
    token_from_env,
)
from ember.node.bundles import BundleLedger
from ember.node.launcher import DeferredLauncher
from ember.node.object_manager import ObjectManager
from ember.node.worker_pool import WorkerHandle, WorkerPool
from ember.object_store.shm import Arena, arena_path, create_arena, remove_arena
from ember.object_store.store import ObjectStore, StoreFullError
from ember.protocol.messages import (
    SCHEMA,
    ActorDiedRequest,
    CreateObjectReply,
    Empty,
    GetObjectsReply,
    GetObjectsRequest,
    HeartbeatRequest,
    LeaseReply,
    NodeInfo,
    NodeStatsReply,
    ObjectLocation,
    RegisterNodeRequest,
    RegisterWorkerReply,
)
from ember.rpc.connection import Connection, Server, connect
from ember.rpc.errors import AuthenticationError, RpcError
from ember.scheduler import resources as res
from ember.scheduler.policy import NodeView, decide

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class NodeOptions:
    """How to start a node daemon."""

    session_dir: str
    control: str
    node_ip: str
    port: int
    resources: dict[str, float]
    object_store_bytes: int
    is_head: bool
    ready_fd: int = -1


class PendingLease:
    """A lease request waiting for resources or a worker."""

    def __init__(self, req: Any, conn: Connection) -> None:
        self.req = req
        self.conn = conn
        self.fut: asyncio.Future[LeaseReply] = (
            asyncio.get_running_loop().create_future()
        )


class NodeDaemon:
    """Everything one node daemon owns."""

    def __init__(self, opts: NodeOptions, token: bytes, config: Config) -> None:
        self.opts = opts
        self.token = token
        self.config = config
        self.node_id = random_id()
        self.total = dict(opts.resources)
        self.available = dict(opts.resources)
        self.gpus_free = list(range(int(self.total.get("GPU", 0))))
        self.leases: dict[
            int, tuple[WorkerHandle, dict[str, float], Connection, list[int]]
        ] = {}
        self._next_lease = 1
        self.pending: list[PendingLease] = []
        self.log_subs: dict[bytes, set[Connection]] = {}
        self.sup = Supervisor("node")
        self.server = Server(token=token, schema=SCHEMA, handlers=self._handlers())
        self.control: Connection | None = None
        self.stopped = asyncio.Event()
        session = os.path.basename(opts.session_dir.rstrip("/"))
        self.arena_path = arena_path(
            session,
            self.node_id.hex()[:8],
            os.path.join(opts.session_dir, "objects"),
            opts.object_store_bytes,
        )
        create_arena(self.arena_path, opts.object_store_bytes)
        self.arena = Arena(self.arena_path, opts.object_store_bytes)
        self.store = ObjectStore(opts.object_store_bytes)
        self.objects = ObjectManager(self)
        self.server.handlers.update(self.objects.handlers())
        self.bundles = BundleLedger(self)
        self.server.handlers.update(self.bundles.handlers())
        self.cluster: dict[bytes, NodeInfo] = {}
        self._rotation = 0
        #: requests no node could ever hold, reported to the control service (ember status)
        self.infeasible: dict[str, tuple[dict[str, float], float]] = {}
        self.unix = os.path.join(
            opts.session_dir, "sockets", f"node-{self.node_id.hex()[:8]}"
        )
        self.log_dir = os.path.join(opts.session_dir, "logs")
        self.pool: WorkerPool | None = None
        self._resources_dirty = False

    def _handlers(self) -> dict[str, Any]:
        return {
            "node.register_worker": self.register_worker,
            "node.request_worker_lease": self.request_lease,
            "node.return_worker_lease": self.return_lease,
            "node.create_object": self.create_object,
            "node.seal_object": self.seal_object,
            "node.abort_object": self.abort_object,
            "node.get_objects": self.get_objects,
            "node.release_objects": self.release_objects,
            "node.free_objects": self.free_objects,
            "node.get_stats": self.get_stats,
            "node.worker_log": self.worker_log,
            "node.subscribe_logs": self.subscribe_logs,
            "node.shutdown": self.shutdown,
            "node.worker_blocked": self.worker_blocked,
            "node.cluster_changed": self.cluster_changed,
            "node.worker_unblocked": self.worker_unblocked,
        }

    async def start(self) -> str:
        os.makedirs(os.path.dirname(self.unix), exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        await self.server.listen(f"unix:{self.unix}")
        tcp = await self.server.listen(f"tcp:{self.opts.node_ip}:{self.opts.port}")
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token.decode()
        env.pop("EMBER_DIE_WITH_PARENT", None)
        # As Ray does: one math-library thread per worker unless the user chose otherwise,
        # so that N workers on N cores do not oversubscribe them N-fold.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        self.launcher = DeferredLauncher(
            os.path.join(os.path.dirname(self.unix), f"fork-{self.node_id.hex()[:8]}"),
            env,
            os.path.join(self.log_dir, f"forkserver-{self.node_id.hex()[:8]}.log"),
        )
        self.pool = WorkerPool(
            argv=[
                "--node-unix",
                self.unix,
                "--node-id",
                self.node_id.hex(),
                "--store-path",
                self.arena_path,
                "--store-bytes",
                str(self.opts.object_store_bytes),
                "--node-ip",
                self.opts.node_ip,
                "--control",
                self.opts.control,
            ],
            env=env,
            log_dir=self.log_dir,
            on_exit=self._worker_exited,
            on_idle=self._dispatch,
            launcher=self.launcher,
        )
        self.control = await self._connect_control()
        self.control.on_close(lambda c: self.stopped.set())
        info = NodeInfo(
            node_id=self.node_id,
            address=tcp,
            unix=f"unix:{self.unix}",
            ip=self.opts.node_ip,
            resources=self.total,
            available=self.available,
            is_head=self.opts.is_head,
            hostname=socket.gethostname(),
            object_store_bytes=self.opts.object_store_bytes,
            session_dir=self.opts.session_dir,
            start_time=time.time(),
        )
        await self.control.call("control.register_node", RegisterNodeRequest(info=info))
        await self.refresh_cluster()
        self.sup.spawn(self._heartbeat_loop(), name="heartbeat")
        for _ in range(int(self.total.get("CPU", 1))):
            self.sup.spawn(self.pool.spawn("", {}), name="prestart")
        return tcp

    async def _connect_control(self) -> Connection:
        """Connect to the control service, which may still be starting."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.connect_timeout_s
        while True:
            try:
                return await connect(
                    self.opts.control,
                    token=self.token,
                    schema=SCHEMA,
                    handlers=self.server.handlers,
                )
            except RpcError as exc:
                if loop.time() > deadline:
                    raise
                if isinstance(exc, AuthenticationError):
                    raise
                await asyncio.sleep(0.01)

    # -- leases -----------------------------------------------------------------
    async def request_lease(self, conn: Connection, req: Any, bufs: Any) -> LeaseReply:
        decision = decide(
            req.resources,
            req.strategy,
            self.node_id,
            self._views(),
            req.spilled,
            self._rotation,
        )
        if req.strategy.get("type") == "SPREAD" and not req.spilled:
            self._rotation += 1
        if decision.kind == "infeasible":
            key = repr(sorted(req.resources.items()))
            self.infeasible[key] = (dict(req.resources), time.monotonic())
            return LeaseReply(infeasible=True)
        if decision.kind == "unschedulable":
            return LeaseReply(unschedulable=decision.reason)
        if decision.kind == "spill":
            target = self.cluster[decision.node_id]
            # Count what we just sent there until its next heartbeat says otherwise,
            # so a burst of requests spreads over every node with room.
            avail = dict(target.available)
            res.subtract(avail, req.resources)
            target.available = avail
            return LeaseReply(spillback=target.address, spillback_node=target.node_id)
        p = PendingLease(req, conn)
        self.pending.append(p)
        self._dispatch()
        return await p.fut

    def _views(self) -> dict[bytes, NodeView]:
        views = {
            n: NodeView(n, i.resources, i.available, i.alive)
            for n, i in self.cluster.items()
        }
        views[self.node_id] = NodeView(self.node_id, self.total, self.available, True)
        return views

    async def refresh_cluster(self) -> None:
        if self.control is None or self.control.is_closed():
            return
        reply, _ = await self.control.call("control.get_nodes", Empty())
        self.cluster = {n.node_id: n for n in reply.nodes}

    def cluster_changed(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.sup.spawn(self._refresh_quietly(), name="refresh-cluster")

    async def _refresh_quietly(self) -> None:
        try:
            await self.refresh_cluster()
        except RpcError:
            pass

    def _dispatch(self) -> None:
        assert self.pool is not None
        still: list[PendingLease] = []
        for p in self.pending:
            if p.fut.done() or p.conn.is_closed():
                continue
            if not res.fits(p.req.resources, self.available):
                still.append(p)
                continue
            h = self.pool.take_idle(p.req.env_key)
            if h is None:
                still.append(p)
                waiting = sum(1 for q in still if q.req.env_key == p.req.env_key)
                if self.pool.starting.get(p.req.env_key, 0) < waiting:
                    self.sup.spawn(
                        self.pool.spawn(p.req.env_key, p.req.env_vars), name="spawn"
                    )
                continue
            self._grant(p, h)
        self.pending = still

    def _grant(self, p: PendingLease, h: WorkerHandle) -> None:
        req = p.req
        res.subtract(self.available, req.resources)
        gpus: list[int] = []
        need = req.resources.get("GPU", 0)
        if need > 0 and self.gpus_free:
            n = max(1, int(need))
            gpus, self.gpus_free = self.gpus_free[:n], self.gpus_free[n:]
        lease_id = self._next_lease
        self._next_lease += 1
        h.state = "actor" if req.for_actor else "leased"
        h.lease_id = lease_id
        self.leases[lease_id] = (h, dict(req.resources), p.conn, gpus)
        if not req.for_actor:
            p.conn.state.setdefault("leases", set()).add(lease_id)
            if len(p.conn.state["leases"]) == 1:
                p.conn.on_close(self._holder_gone)
        self._resources_changed()
        p.fut.set_result(
            LeaseReply(
                lease_id=lease_id,
                worker=h.address,
                pid=h.pid,
                assigned={"GPU": gpus} if gpus else {},
            )
        )

    def return_lease(self, conn: Connection, req: Any, bufs: Any) -> None:
        entry = self._release_lease(req.lease_id)
        if entry is None:
            return
        conn.state.get("leases", set()).discard(req.lease_id)
        h = entry[0]
        if req.worker_dead:
            self.pool.kill(h, "its lease holder saw it fail")  # type: ignore[union-attr]
        elif h.state == "leased":
            self.pool.make_idle(h)  # type: ignore[union-attr]
        self._dispatch()

    def _release_lease(self, lease_id: int) -> Any:
        entry = self.leases.pop(lease_id, None)
        if entry is None:
            return None
        h, resources, _, gpus = entry
        lent = h.conn.state.pop("blocked", None) if h.conn is not None else None
        res.add(self.available, resources)
        if lent:  # its CPU was lent out while blocked; it is back with the lease
            res.subtract(self.available, lent)
        self.gpus_free.extend(gpus)
        self._resources_changed()
        return entry

    def _holder_gone(self, conn: Connection) -> None:
        for lease_id in list(conn.state.get("leases", ())):
            entry = self._release_lease(lease_id)
            if entry is not None and entry[0].state == "leased":
                # The owner of whatever runs there is gone: stop the orphan work.
                self.pool.kill(entry[0], "its lease holder disconnected")  # type: ignore[union-attr]
        self._dispatch()

    def _worker_exited(self, h: WorkerHandle) -> None:
        if h.lease_id:
            entry = self.leases.get(h.lease_id)
            if entry is not None and entry[0] is h:
                self._release_lease(h.lease_id)
        if h.worker_id and self.control is not None and not self.control.is_closed():
            code = h.exited.result() if h.exited.done() else -1
            self.control.notify(
                "control.actor_died",
                ActorDiedRequest(
                    actor_id=b"",
                    worker_id=h.worker_id,
                    reason=f"The actor's worker process (pid={h.pid}) died unexpectedly "
                    f"(exit code {code}).",
                    intended=code == 0,
                ),
            )
        if h.conn is not None:
            self._unpin_all(
                h.conn
            )  # clears them, so the socket close unpins nothing twice
        if not self.stopped.is_set():
            self._dispatch()

    def resources_changed(self) -> None:
        self._resources_changed()

    def dispatch(self) -> None:
        self._dispatch()

    def _resources_changed(self) -> None:
        if not self._resources_dirty:
            self._resources_dirty = True
            asyncio.get_running_loop().call_soon(self._send_heartbeat)

    def _send_heartbeat(self) -> None:
        self._resources_dirty = False
        if self.control is not None and not self.control.is_closed():
            self.control.notify(
                "control.heartbeat",
                HeartbeatRequest(
                    node_id=self.node_id,
                    available=self.available,
                    pending_demands=[dict(p.req.resources) for p in self.pending][:100],
                    infeasible=self._recent_infeasible(),
                    total=self.total,
                ),
            )

    def _recent_infeasible(self) -> list[dict[str, float]]:
        """Infeasible requests seen in the last few seconds (submitters retry each second)."""
        now = time.monotonic()
        for key in [k for k, (_, t) in self.infeasible.items() if now - t > 5.0]:
            del self.infeasible[key]
        return [r for r, _ in self.infeasible.values()][:100]

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_s)
            self._send_heartbeat()
            try:
                await self.refresh_cluster()
            except RpcError:
                pass
            assert self.pool is not None
            self.pool.trim_idle(
                int(self.total.get("CPU", 1)), self.config.idle_worker_timeout_s
            )

    # -- workers ------------------------------------------------------------------
    async def register_worker(
        self, conn: Connection, req: Any, bufs: Any
    ) -> RegisterWorkerReply:
        assert self.pool is not None
        conn.state["worker_pid"] = req.pid
        self.pool.registered(req.pid, req.worker_id, req.address, conn)
        return RegisterWorkerReply(
            node_id=self.node_id,
            store_path=self.arena_path,
            store_bytes=self.opts.object_store_bytes,
        )

    def _blocked_lease(
        self, conn: Connection
    ) -> tuple[WorkerHandle, dict[str, float]] | None:
        assert self.pool is not None
        h = self.pool.by_pid.get(conn.state.get("worker_pid", -1))
        if h is None or h.state != "leased" or h.lease_id not in self.leases:
            return None
        cpu = self.leases[h.lease_id][1].get("CPU", 0.0)
        return h, {"CPU": cpu} if cpu > 0 else {}

    def worker_blocked(self, conn: Connection, req: Any, bufs: Any) -> None:
        """A worker's task waits in get(): lend its CPU to others (avoids deadlock)."""
        found = self._blocked_lease(conn)
        if found is not None and not conn.state.get("blocked"):
            conn.state["blocked"] = found[1]
            res.add(self.available, found[1])
            self._resources_changed()
            self._dispatch()

    def worker_unblocked(self, conn: Connection, req: Any, bufs: Any) -> None:
        lent = conn.state.pop("blocked", None)
        if lent:
            res.subtract(self.available, lent)
            self._resources_changed()

    # -- objects --------------------------------------------------------------------
    def create_object(self, conn: Connection, req: Any, bufs: Any) -> CreateObjectReply:
        try:
            off = self.store.create(req.oid, req.size)
        except StoreFullError as exc:
            raise MemoryError(
                f"The object store is full: cannot fit an object of {exc.size} bytes "
                f"({exc.used} of {exc.capacity} bytes in use). Free references to objects you "
                "no longer need, or start with a larger object_store_memory."
            ) from exc
        return CreateObjectReply(offset=off)

    def seal_object(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        self.store.seal(req.oid)
        if req.pin:
            self.get_objects(conn, GetObjectsRequest(oids=[req.oid]), bufs)
        return Empty()

    def abort_object(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.store.delete(req.oid)

    def get_objects(self, conn: Connection, req: Any, bufs: Any) -> GetObjectsReply:
        pins: Counter[bytes] = conn.state.setdefault("pins", Counter())
        if not conn.state.get("pin_cb"):
            conn.state["pin_cb"] = True
            conn.on_close(self._unpin_all)
        found: list[ObjectLocation | None] = []
        for oid in req.oids:
            e = self.store.pin(oid)
            if e is None:
                found.append(None)
            else:
                pins[oid] += 1
                found.append(ObjectLocation(offset=e.offset, size=e.size))
        return GetObjectsReply(found=found)

    def release_objects(self, conn: Connection, req: Any, bufs: Any) -> None:
        pins: Counter[bytes] = conn.state.get("pins", Counter())
        for oid in req.oids:
            if pins.get(oid, 0) > 0:
                pins[oid] -= 1
                if pins[oid] == 0:
                    del pins[oid]
                self.store.unpin(oid)

    def _unpin_all(self, conn: Connection) -> None:
        for oid, n in conn.state.get("pins", {}).items():
            for _ in range(n):
                self.store.unpin(oid)
        conn.state["pins"] = Counter()

    def free_objects(self, conn: Connection, req: Any, bufs: Any) -> None:
        for oid in req.oids:
            self.store.delete(oid)

    def get_stats(self, conn: Connection, req: Any, bufs: Any) -> NodeStatsReply:
        st = self.store.statistics()
        ps = self.pool.statistics() if self.pool else {"workers": 0, "idle": 0}
        return NodeStatsReply(
            node_id=self.node_id,
            resources=self.total,
            available=self.available,
            store_used=st.used,
            store_capacity=st.capacity,
            store_objects=st.objects,
            workers=ps["workers"],
            idle_workers=ps["idle"],
            store_path=self.arena_path,
            store_bytes=self.opts.object_store_bytes,
        )

    # -- logs -------------------------------------------------------------------------
    def worker_log(self, conn: Connection, req: Any, bufs: Any) -> None:
        for sub in list(self.log_subs.get(req.job_id, ())):
            if not sub.is_closed():
                try:
                    sub.notify("worker.log_lines", req)
                except RpcError:
                    pass

    def subscribe_logs(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        subs = self.log_subs.setdefault(req.job_id, set())
        subs.add(conn)
        conn.on_close(subs.discard)
        return Empty()

    def shutdown(self, conn: Connection, req: Any, bufs: Any) -> None:
        self.stopped.set()

    async def close(self) -> None:
        self.sup.close()
        if self.pool is not None:
            await self.pool.close()
            await self.launcher.close()
        self.server.close()
        if self.control is not None:
            self.control.close()
        self.arena.close()
        remove_arena(self.arena_path)
        try:
            os.unlink(self.unix)
        except FileNotFoundError:
            pass


async def _main(opts: NodeOptions) -> None:
    daemon = NodeDaemon(opts, token_from_env(), Config.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopped.set)
    try:
        tcp = await daemon.start()
        signal_ready(opts.ready_fd, f"{tcp} {daemon.node_id.hex()}")
        await daemon.stopped.wait()
    finally:
        await daemon.close()


def run(opts: NodeOptions) -> None:
    """Serve until SIGTERM or until the control service goes away."""
    die_with_parent()
    setup_daemon_logging("node")
    raise_nofile_limit()
    loop = new_event_loop()
    try:
        loop.run_until_complete(_main(opts))
    finally:
        loop.close()
