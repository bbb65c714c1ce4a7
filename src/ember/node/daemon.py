"""The node daemon process: composes leases, workers, objects and bundles; heartbeats.

Collaborators (each gets only what it uses)::

    ResourceLedger (scheduler/ledger.py)  every resource amount of this node
    LeaseManager   (leases.py)            node.request/return_worker_lease, blocked workers
    Bundles        (bundles.py)           node.prepare/commit/cancel_bundles
    LocalObjects   (local_objects.py)     node.create/seal/get/release/free objects
    Spiller        (spill.py)             room in the store: drop copies, spill, restore
    ObjectManager  (object_manager.py)    pulls between nodes
    MemoryMonitor  (memory_monitor.py)    kills a worker when node memory runs out
    ClusterView    (cluster_view.py)      the other nodes, from the control service
    WorkerPool     (worker_pool.py)       the worker processes
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import socket
import time
from typing import TYPE_CHECKING, Any

from ember.common import gc_tuning
from ember.common.aio import Supervisor, new_event_loop
from ember.common.config import Config
from ember.common.fdlimit import raise_nofile_limit
from ember.common.ids import random_id
from ember.common.node_labels import NODE_ID_KEY
from ember.common.private_files import make_private
from ember.common.process import (
    TOKEN_ENV,
    die_with_parent,
    setup_daemon_logging,
    signal_ready,
    token_from_env,
)
from ember.metrics.counts import FailureCounts
from ember.metrics.names import enabled as metrics_enabled
from ember.metrics.user_store import UserMetricStore
from ember.node.bundles import Bundles
from ember.node.cluster_view import ClusterView
from ember.node.drain import drain_node
from ember.node.launcher import DeferredLauncher
from ember.node.leases import LeaseManager
from ember.node.local_objects import LocalObjects
from ember.node.log_files import LogFiles
from ember.node.memory_monitor import MemoryMonitor, MonitorSettings
from ember.node.object_manager import ObjectManager
from ember.node.object_report import NodeObjectReport
from ember.node.runtime_envs import RuntimeEnvs, control_fetch
from ember.node.spill import Spiller
from ember.node.spill_io import configured_directory, spill_folder
from ember.node.system_stats import SystemStats
from ember.node.worker_pool import WorkerHandle, WorkerPool, describe_exit
from ember.object_store.shm import Arena, arena_path, create_arena, remove_arena
from ember.object_store.spill_policy import SpillPolicy
from ember.object_store.store import ObjectStore
from ember.protocol.messages import (
    SCHEMA,
    ActorDiedRequest,
    Empty,
    HeartbeatRequest,
    NodeInfo,
    NodeStatsReply,
    RegisterNodeRequest,
    RegisterWorkerReply,
)
from ember.rpc.connection import Connection, ConnectionPool, Server, connect
from ember.rpc.errors import AuthenticationError, RpcError
from ember.rpc.reconnecting import ReconnectingConnection
from ember.scheduler.ledger import ResourceLedger

if TYPE_CHECKING:
    from ember.metrics.exporter import MetricsExporter

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
    #: the TCP address to listen on ("" = ``node_ip``)
    listen_address: str = ""
    #: listen on TCP at all (False: the embedded one-node cluster, unix sockets only)
    tcp: bool = True
    #: the node's labels (NodeLabelSchedulingStrategy); ``ray.io/node-id`` is added
    labels: dict[str, str] = dataclasses.field(default_factory=dict)
    #: ``--object-spilling-directory`` ("" = the config's, else ``<session>/spill``)
    spill_dir: str = ""
    #: ``--metrics-export-port`` on ``node_ip`` (0: a free port; -1: the config's
    #: ``metrics_export_port``, whose default -1 exports nothing)
    metrics_port: int = -1


class NodeDaemon:
    """Everything one node daemon owns."""

    def __init__(self, opts: NodeOptions, token: bytes, config: Config) -> None:
        self.opts = opts
        self.token = token
        self.config = config
        self.node_id = random_id()
        self.ledger = ResourceLedger(opts.resources)
        self.log_subs: dict[bytes, set[Connection]] = {}
        self.sup = Supervisor("node")
        self.server = Server(token=token, schema=SCHEMA, handlers=self._handlers())
        self.control: ReconnectingConnection | None = None
        self._tcp, self._start_time = "", 0.0
        self.stopped = asyncio.Event()
        # the spill folder first: a refused folder must not leave an arena behind
        spill_dir = spill_folder(
            opts.session_dir,
            configured_directory(
                opts.spill_dir,
                config.object_spilling_directory,
                config.object_spilling_config,
            ),
        )
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
        self.cluster = ClusterView(self.node_id, self.sup)
        self.spiller = self._make_spiller(spill_dir, config)
        self.objects = LocalObjects(self.store, self.spiller)
        peers = ConnectionPool(
            token=token,
            schema=SCHEMA,
            handlers=self.server.handlers,
            timeout_s=config.connect_timeout_s,
        )
        self.transfers = ObjectManager(
            self.store,
            self.arena,
            self.cluster,
            peers,
            self.sup,
            self.spiller,
            self.objects.owners,
        )
        self.bundles = Bundles(
            self.ledger, self._bundles_changed, self._bundles_removed
        )
        for part in (self.cluster, self.objects, self.transfers, self.bundles):
            self.server.handlers.update(part.handlers())
        self.object_report = self._object_report()
        self.server.handlers.update(self.object_report.handlers())
        self.server.handlers.update(self._system_stats().handlers())
        #: set by start(), once there is a worker pool
        self.leases: LeaseManager
        self.unix = os.path.join(
            opts.session_dir, "sockets", f"node-{self.node_id.hex()[:8]}"
        )
        self.log_dir = os.path.join(opts.session_dir, "logs")
        self.pool: WorkerPool | None = None
        self.memory: MemoryMonitor | None = None
        self._resources_dirty = False
        self.failures = FailureCounts()
        self.user_metrics = UserMetricStore()
        self.metrics: MetricsExporter | None = None

    def _make_spiller(self, folder: str, config: Config) -> Spiller:
        policy = SpillPolicy(
            self.store.capacity,
            threshold=config.object_spilling_threshold,
            batch_bytes=config.min_spilling_size,
            batch_max_objects=config.max_fused_object_count,
        )
        return Spiller(
            self.store,
            self.arena,
            policy,
            folder,
            self.sup,
            full_timeout_s=config.object_store_full_timeout_s,
            io_threads=config.max_io_workers,
            node_tag=self.node_id.hex()[:8],
        )

    def _object_report(self) -> NodeObjectReport:
        """``node.list_objects``: the refs this node's workers and drivers hold."""

        def worker_conns() -> list[Connection]:
            handles = self.pool.by_pid.values() if self.pool is not None else ()
            return [h.conn for h in handles if h.conn is not None and h.state != "dead"]

        return NodeObjectReport(self.node_id, worker_conns, self.spiller.index.oids)

    def _system_stats(self) -> SystemStats:
        """``node.get_system_stats``: machine counters, this node's processes."""

        def store() -> tuple[int, int, int]:
            st = self.store.statistics()
            return st.used, st.capacity, self.spiller.statistics().bytes_on_disk

        def processes() -> list[tuple[int, bytes, bool]]:
            handles = self.pool.by_pid.values() if self.pool is not None else ()
            out = [(h.pid, h.worker_id, False) for h in handles if h.state != "dead"]
            return out + [
                (pid, b"", True) for pid in self.object_report.drivers.values()
            ]

        return SystemStats(self.node_id, self.opts.session_dir, store, processes)

    def _handlers(self) -> dict[str, Any]:
        return {
            "node.register_worker": self.register_worker,
            "node.get_stats": self.get_stats,
            "node.worker_log": self.worker_log,
            "node.subscribe_logs": self.subscribe_logs,
            "node.shutdown": self.shutdown,
            "node.report_metrics": lambda c, req, b: (
                None if self.metrics is None else self.user_metrics.add(req.points)
            ),
            "node.exit_declined": self.exit_declined,
            **LogFiles(os.path.join(self.opts.session_dir, "logs")).handlers(),
            "node.drain": lambda c, req, b: drain_node(
                req,
                self.leases,
                self.ledger,
                self.store.statistics(),
                self.spiller.statistics(),
                self.server.handlers,
                self.stopped.set,
            ),
            "node.prepare_runtime_env": lambda c, req, b: (
                self.pool.envs.start_eager(req.runtime_env)
                if self.pool is not None and self.pool.envs is not None
                else None
            ),
        }

    async def start(self) -> str:
        os.makedirs(os.path.dirname(self.unix), exist_ok=True)
        os.makedirs(self.log_dir, exist_ok=True)
        await self.server.listen(f"unix:{self.unix}")
        make_private(self.unix)
        tcp = ""
        if self.opts.tcp:
            host = self.opts.listen_address or self.opts.node_ip
            bound = await self.server.listen(f"tcp:{host}:{self.opts.port}")
            tcp = f"tcp:{self.opts.node_ip}:{bound.rpartition(':')[2]}"
        env = dict(os.environ)
        env[TOKEN_ENV] = self.token.decode()
        env.pop("EMBER_DIE_WITH_PARENT", None)
        # As Ray does: one math-library thread per worker unless the user chose otherwise,
        # so that N workers on N cores do not oversubscribe them N-fold.
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            env.setdefault(var, "1")
        self.launcher = DeferredLauncher(
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
            on_idle=lambda: self.leases.dispatch(),
            launcher=self.launcher,
            envs=RuntimeEnvs(
                self.opts.session_dir, control_fetch(lambda: self.control)
            ),
        )
        self.leases = LeaseManager(
            self.ledger, self.pool, self.cluster, self.sup, self._resources_changed
        )
        self.server.handlers.update(self.leases.handlers())
        self.memory = MemoryMonitor(
            MonitorSettings.from_env(),
            self.leases.kill_candidates,
            self._kill_for_memory,
        )
        if self.memory.enabled:
            self.sup.spawn(self.memory.run(), name="memory-monitor")
        self._tcp, self._start_time = tcp, time.time()
        await self._start_metrics()
        conn = await self._connect_control()
        await self._register(conn)
        # The control service may restart (ember start --head supervises it):
        # calls wait while this reconnects and registers the node again.
        self.control = ReconnectingConnection(
            conn,
            self._connect_control_once,
            what=f"the control service at {self.opts.control}",
            give_up_after_s=self.config.head_reconnect_timeout_s,
            on_connected=self._reregister,
            on_give_up=lambda why: self.stopped.set(),
        )
        self.cluster.control = self.control
        await self.cluster.refresh()
        self.sup.spawn(self._heartbeat_loop(), name="heartbeat")
        for _ in range(int(self.opts.resources.get("CPU", 1))):
            self.sup.spawn(self.pool.spawn("", {}), name="prestart")
        return tcp

    def _node_info(self) -> NodeInfo:
        return NodeInfo(
            node_id=self.node_id,
            address=self._tcp,
            unix=f"unix:{self.unix}",
            ip=self.opts.node_ip,
            resources=self.ledger.totals(),
            available=self.ledger.available(),
            is_head=self.opts.is_head,
            labels={**self.opts.labels, NODE_ID_KEY: self.node_id.hex()},
            hostname=socket.gethostname(),
            object_store_bytes=self.opts.object_store_bytes,
            session_dir=self.opts.session_dir,
            start_time=self._start_time,
            metrics_port=self.metrics.port if self.metrics is not None else 0,
        )

    async def _register(self, conn: Connection) -> None:
        info = self._node_info()
        live = (
            [
                h.worker_id
                for h in self.pool.by_pid.values()
                if h.worker_id and h.state != "dead"
            ]
            if self.pool is not None
            else []
        )
        await conn.call(
            "control.register_node", RegisterNodeRequest(info=info, live_workers=live)
        )

    async def _reregister(self, conn: Connection) -> None:
        """A restarted control service: register again, then refresh the cluster view."""
        await self._register(conn)
        self.sup.spawn(self.cluster.refresh(), name="cluster-refresh")

    async def _connect_control_once(self) -> Connection:
        return await connect(
            self.opts.control,
            token=self.token,
            schema=SCHEMA,
            handlers=self.server.handlers,
            timeout=self.config.connect_timeout_s,
        )

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

    # -- heartbeats ------------------------------------------------------------------
    def _bundles_changed(self) -> None:
        self.leases.resources_changed()

    def _bundles_removed(self, lease_ids: list[int]) -> None:
        self.leases.bundles_removed(lease_ids)

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
                    available=self.ledger.available(),
                    pending_demands=self.leases.pending_demands(),
                    infeasible=self.leases.recent_infeasible(),
                    total=self.ledger.totals(),
                    store_used=self.store.statistics().used,
                ),
                queue_if_down=False,  # the next heartbeat replaces it
            )

    async def _heartbeat_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_interval_s)
            self._send_heartbeat()
            try:
                await self.cluster.refresh()
            except RpcError:
                pass
            assert self.pool is not None
            self.pool.trim_idle(
                int(self.opts.resources.get("CPU", 1)),
                self.config.idle_worker_timeout_s,
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

    # -- metrics --------------------------------------------------------------------
    async def _start_metrics(self) -> None:
        """Serve Prometheus text on ``node_ip:--metrics-export-port`` (token required)."""
        port = self.opts.metrics_port
        if port < 0:
            port = self.config.metrics_export_port
        if port < 0 or not metrics_enabled():
            return
        # here, not at the top: a daemon without metrics never loads aiohttp
        from ember.metrics import assembly

        pool = self.pool
        assert pool is not None
        parts = assembly.NodeParts(
            node_ip=self.opts.node_ip,
            is_head=self.opts.is_head,
            session_dir=self.opts.session_dir,
            session_name=assembly.head_session_name(
                lambda: self.cluster.nodes.values(), self.opts.session_dir
            ),
            store=self.store,
            spill_stats=self.spiller.statistics,
            arena_in_shm=self.arena_path.startswith("/dev/shm"),
            totals=self.ledger.totals,
            available=self.ledger.available,
            waiting=lambda: (len(self.leases.pending), len(self.leases.infeasible)),
            failures=self.failures,
            user_metrics=self.user_metrics,
            components=assembly.node_components(
                lambda: pool.by_pid, lambda: list(self.server.connections)
            ),
            gpus=int(self.opts.resources.get("GPU", 0)),
        )
        self.metrics = assembly.node_exporter(self.token, parts)
        await self.metrics.start(self.opts.node_ip, port)
        logger.info("metrics on http://%s/metrics", self.metrics.address)

    def _kill_for_memory(self, victim: Any, death: Any) -> bool:
        killed = self.leases.kill_for_memory(victim, death)
        if killed:
            self.failures.evicted(victim.for_actor, victim.name)
        return killed

    def exit_declined(self, conn: Connection, req: Any, bufs: Any) -> None:
        """An idle worker that owns objects in use stays (as Ray keeps owners)."""
        h = self.pool.by_pid.get(conn.state.get("worker_pid", 0)) if self.pool else None
        if h is not None and h.state == "exiting" and self.pool is not None:
            self.pool.make_idle(h)

    def _worker_exited(self, h: WorkerHandle) -> None:
        code = h.exited.result() if h.exited.done() and not h.exited.cancelled() else 0
        # The node stops workers with SIGKILL (leases, idle trimming, shutdown); any
        # other death, and a memory-monitor kill, was not the node's plan.
        if not self.stopped.is_set() and (
            h.death is not None or code not in (0, -signal.SIGKILL)
        ):
            self.failures.unexpected_worker_failures += 1
        self.leases.worker_exited(h)
        if h.worker_id:  # at once here; the control service tells the other nodes
            self.objects.owners_died([h.worker_id])
        if self.memory is not None:
            self.memory.worker_exited(h.pid)
        if h.worker_id and self.control is not None and not self.control.is_closed():
            code = h.exited.result() if h.exited.done() else -1
            death = WorkerPool.death_of(h)
            self.control.notify(
                "control.actor_died",
                ActorDiedRequest(
                    actor_id=b"",
                    worker_id=h.worker_id,
                    reason=f"The actor's worker process (pid={h.pid}) died unexpectedly "
                    f"({describe_exit(code)})."
                    + (f" {death.message}" if death.kind == "oom" else ""),
                    # an intended exit (exit_actor) was announced by the worker
                    # itself; a process that just ends is a crash, whatever its code
                    intended=False,
                ),
            )
        if h.conn is not None:
            # clears them, so the socket close unpins nothing twice
            self.objects.unpin_all(h.conn)
        if not self.stopped.is_set():
            self.leases.dispatch()

    def get_stats(self, conn: Connection, req: Any, bufs: Any) -> NodeStatsReply:
        st = self.store.statistics()
        sp = self.spiller.statistics()
        ps = self.pool.statistics() if self.pool else {"workers": 0, "idle": 0}
        return NodeStatsReply(
            node_id=self.node_id,
            resources=self.ledger.totals(),
            available=self.ledger.available(),
            store_used=st.used,
            store_capacity=st.capacity,
            store_objects=st.objects,
            workers=ps["workers"],
            idle_workers=ps["idle"],
            store_path=self.arena_path,
            store_bytes=self.opts.object_store_bytes,
            spill_dir=sp.folder,
            spilled_objects=sp.spilled_objects,
            spilled_bytes=sp.spilled_bytes,
            restored_objects=sp.restored_objects,
            restored_bytes=sp.restored_bytes,
            spill_files=sp.files,
            spilled_bytes_on_disk=sp.bytes_on_disk,
            memory_kills=self.memory.kills if self.memory else 0,
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
        self.spiller.close()
        self.arena.close()
        remove_arena(self.arena_path)
        try:
            os.unlink(self.unix)
        except FileNotFoundError:
            pass
        if self.metrics is not None:
            await self.metrics.close()


async def _main(opts: NodeOptions) -> None:
    daemon = NodeDaemon(opts, token_from_env(), Config.from_env())
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, daemon.stopped.set)
    try:
        tcp = await daemon.start()
        signal_ready(
            opts.ready_fd, f"{tcp or 'unix:' + daemon.unix} {daemon.node_id.hex()}"
        )
        await daemon.stopped.wait()
    finally:
        await daemon.close()


def run(opts: NodeOptions) -> None:
    """Serve until SIGTERM or until the control service goes away."""
    die_with_parent()
    setup_daemon_logging("node")
    raise_nofile_limit()
    gc_tuning.tune()
    loop = new_event_loop()
    try:
        loop.run_until_complete(_main(opts))
    finally:
        loop.close()
