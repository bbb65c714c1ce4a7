"""The control service process: composes its tables and registers handlers."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import msgspec

from ember.common import gc_tuning
from ember.common.aio import new_event_loop
from ember.common.config import Config
from ember.common.fdlimit import raise_nofile_limit
from ember.common.ids import JobID
from ember.common.private_files import make_private
from ember.common.process import (
    die_with_parent,
    setup_daemon_logging,
    signal_ready,
    token_from_env,
)
from ember.control import profiling
from ember.control.actors import OUT_OF_SCOPE_CAUSE, ActorDirectory
from ember.control.drain import drain_node
from ember.control.nodes import NodeTable
from ember.control.owners import DeadOwners
from ember.control.packages import Packages
from ember.control.placement_groups import PlacementGroups
from ember.control.state_rows import (
    StateQueries,
    WorkersSeen,
    actor_row,
    job_row,
    node_row,
    placement_group_row,
)
from ember.control.storage import MemoryStorage, Storage, open_storage
from ember.control.task_events import TaskEventTable
from ember.metrics.files.prometheus import DISCOVERY_FILE, DiscoveryFile
from ember.metrics.names import enabled as metrics_enabled
from ember.protocol.messages import (
    SCHEMA,
    Empty,
    GetClusterStatusReply,
    GetNodesReply,
    KvGetReply,
    KvPutReply,
    ListActorsReply,
    ListNamedActorsReply,
    ListPlacementGroupsReply,
    NodeDiedMessage,
    RegisterJobReply,
    WaitPlacementGroupReply,
)
from ember.rpc.connection import Connection, Server, connect
from ember.rpc.errors import RpcError

if TYPE_CHECKING:
    from ember.metrics.control_collectors import TaskCounts
    from ember.metrics.exporter import MetricsExporter

logger = logging.getLogger(__name__)


class ControlService:
    """Composes the control service's tables and serves ``control.*`` with them.

    The tables (:class:`NodeTable`, :class:`ActorDirectory`,
    :class:`PlacementGroups`) get what they use of each other passed in;
    this class owns the KV store and the job records, and wires the events
    that cross tables (a node's death, a job's end).
    """

    def __init__(
        self, token: bytes, session_dir: str, storage: Storage | None = None
    ) -> None:
        self.token = token
        self.schema = SCHEMA
        self.session_dir = session_dir
        self.storage: Storage = storage if storage is not None else MemoryStorage()
        self.config = Config.from_env()
        self.nodes = NodeTable(self.storage)
        self.kv: dict[tuple[str, bytes], bytes] = {}
        self.actors = ActorDirectory(self.nodes, self.storage, self._connect_worker)
        self.placement_groups = PlacementGroups(
            self.nodes,
            on_removed=self.actors.placement_group_removed,
            storage=self.storage,
        )
        self.dead_owners = DeadOwners(self.nodes)
        self._next_job = 1
        self.jobs: dict[bytes, dict[str, Any]] = {}
        #: jobs alive before a restart whose driver has not reconnected yet
        self._unclaimed_jobs: set[bytes] = set()
        #: task attempts from the core workers' task events (the state API, metrics)
        self.task_events = TaskEventTable()
        self.state = StateQueries(
            self.task_events,
            {
                "actors": lambda: [actor_row(r) for r in self.actors.actors.values()],
                "nodes": lambda: [node_row(n) for n in self.nodes.nodes.values()],
                "jobs": lambda: [
                    job_row(j, job, self.state.workers) for j, job in self.jobs.items()
                ],
                "placement_groups": lambda: [
                    placement_group_row(g)
                    for g in self.placement_groups.groups.values()
                ],
            },
            WorkersSeen(),
        )
        self.server = Server(token=token, schema=SCHEMA, handlers=self._handlers())
        #: Prometheus's targets, rewritten as nodes join and leave
        self.targets = DiscoveryFile(os.path.join(session_dir, DISCOVERY_FILE))
        # they follow membership, rewritten with each (coalesced) notice
        self.nodes.after_notice = lambda: self.targets.update(self.nodes.nodes.values())
        self.stopped = asyncio.Event()
        #: the Prometheus endpoint, once :meth:`start_metrics` ran
        self.metrics: MetricsExporter | None = None
        self._load()

    def _load(self) -> None:
        """Reload what a previous control service with the same storage persisted."""
        for raw_key, value in self.storage.scan("kv"):
            ns, key = msgspec.msgpack.decode(raw_key)
            self.kv[(ns, key)] = value
        for job_id, raw in self.storage.scan("jobs"):
            job = msgspec.msgpack.decode(raw)
            if job.get("alive"):
                # Its driver was connected to the previous control service: it has
                # the grace period (recover()) to come back, or its job ends.
                self._unclaimed_jobs.add(job_id)
            self.jobs[job_id] = job
            self._next_job = max(self._next_job, int.from_bytes(job_id, "little") + 1)
        self.nodes.load()
        self.actors.load()
        self.placement_groups.load()
        if self.kv or self.jobs or self.actors.actors:
            logger.info(
                "recovered %d KV entries, %d jobs and %d actors from storage",
                len(self.kv),
                len(self.jobs),
                len(self.actors.actors),
            )

    def _handlers(self) -> dict[str, Any]:
        a, pg = self.actors, self.placement_groups
        return {
            "control.register_node": self.register_node,
            "control.heartbeat": lambda c, req, b: self.nodes.heartbeat(
                req, time.monotonic()
            ),
            "control.get_nodes": self.get_nodes,
            "control.get_cluster_status": self.get_cluster_status,
            "control.kv_put": self.kv_put,
            "control.kv_get": lambda c, req, b: KvGetReply(
                value=self.kv.get((req.namespace, req.key))
            ),
            "control.register_job": self.register_job,
            "control.job_finished": lambda c, req, b: self._job_done(req.job_id),
            "control.create_actor": lambda c, req, b: a.create(
                req.spec, req.get_if_exists
            ),
            "control.get_actor_info": lambda c, req, b: a.wait_info(
                req.actor_id, req.wait_after_epoch, req.timeout_s
            ),
            "control.get_named_actor": lambda c, req, b: a.named_info(
                req.namespace, req.name
            ),
            "control.list_named_actors": lambda c, req, b: ListNamedActorsReply(
                actors=a.list_named(req.namespace, req.all_namespaces)
            ),
            "control.list_actors": lambda c, req, b: ListActorsReply(actors=a.infos()),
            "control.kill_actor": self.kill_actor,
            "control.actor_died": self.worker_exited,
            "control.create_placement_group": self.create_placement_group,
            "control.remove_placement_group": self.remove_placement_group,
            "control.wait_placement_group": self.wait_placement_group,
            "control.get_placement_group": self.get_placement_group,
            "control.list_placement_groups": lambda c, req, b: ListPlacementGroupsReply(
                groups=list(pg.groups.values())
            ),
            "control.add_task_events": self.state.add_task_events,
            "control.list_tasks": self.state.list_tasks,
            "control.list_state": self.state.list_state,
            "control.drain_node": lambda c, req, b: drain_node(self.nodes, req),
            # runtime env packages (working_dir, py_modules), kept in self.storage
            **Packages(self.storage).handlers(),
        }

    def worker_exited(self, conn: Connection, req: Any, bufs: Any) -> Any:
        """A node saw a worker process exit: its actor (if any) and its objects."""
        self.dead_owners.died([req.worker_id])
        return self.actors.on_worker_exit(req.worker_id, req.reason, req.intended)

    async def _connect_worker(self, address: str) -> Connection:
        return await connect(address, token=self.token, schema=self.schema)

    # -- nodes --------------------------------------------------------------------
    def register_node(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        info = req.info
        self.nodes.register(info, conn, time.monotonic())
        self.actors.recovery.node_registered(info.node_id, set(req.live_workers))
        conn.on_close(lambda c: self._node_lost(info.node_id, c))
        self.nodes.tell_cluster_changed()
        return Empty()

    def get_nodes(self, conn: Connection, req: Any, bufs: Any) -> GetNodesReply:
        """Every node, or (a view that names its version) only those changed since."""
        nodes, delta = self.nodes.changed_since(req.since, req.view_id)
        return GetNodesReply(
            nodes=nodes,
            version=self.nodes.version,
            view_id=self.nodes.view_id,
            delta=delta,
        )

    def _node_lost(self, node_id: bytes, conn: Connection) -> None:
        node = self.nodes.lost(node_id, conn)
        if node is None:
            return
        self.nodes.tell_cluster_changed()
        self._node_died(node_id, node.death_reason, conn)
        self.actors.on_node_died(node_id)

    def _node_died(
        self, node_id: bytes, reason: str, conn: Connection | None = None
    ) -> None:
        # Tell every client at once, so calls to that node's workers fail now
        # (a dead link sends no FIN) and their tasks are retried elsewhere.
        msg = NodeDiedMessage(node_id=node_id, reason=reason)
        for c in list(self.server.connections):
            # not to a connection still in its handshake: a frame before its
            # WELCOME is a protocol error that closes it
            if c is not conn and not c.is_closed() and _authenticated(c):
                try:
                    c.notify("worker.node_died", msg)
                except RpcError:
                    pass
        self.dead_owners.died(node_ids=[node_id])

    async def recover(self) -> None:
        """After a restart: wait for nodes and drivers to come back, then settle.

        Nodes and actors whose node did not register again, and jobs whose
        driver did not reconnect, within ``node_death_timeout_s`` are handled
        as dead.
        """
        if (
            not self.actors.recovery.unconfirmed
            and not self._unclaimed_jobs
            and not self.nodes.unconfirmed
        ):
            return
        waited = self.config.node_death_timeout_s
        await asyncio.sleep(waited)
        gone = self.nodes.expire_unconfirmed(waited)
        for node_id in gone:
            self._node_died(node_id, self.nodes.nodes[node_id].death_reason)
        if gone:
            self.nodes.tell_cluster_changed()
        self.actors.recovery.expire()
        for job_id in sorted(self._unclaimed_jobs):
            self._job_done(job_id)
        self._unclaimed_jobs.clear()

    async def monitor_nodes(self) -> None:
        """Declare dead the nodes that missed heartbeats for ``node_death_timeout_s``.

        A node whose machine or link died sends no FIN, so its connection looks
        open; missed heartbeats are the only sign.
        """
        timeout = self.config.node_death_timeout_s
        while True:
            await asyncio.sleep(min(timeout / 4, 1.0))
            for node_id, conn in self.nodes.expired(time.monotonic(), timeout):
                self._node_lost(node_id, conn)

    def get_cluster_status(
        self, conn: Connection, req: Any, bufs: Any
    ) -> GetClusterStatusReply:
        """Nodes plus the pending resource demands, grouped by shape."""
        path = getattr(self.storage, "path", "")
        return GetClusterStatusReply(
            nodes=list(self.nodes.nodes.values()),
            demands=self.nodes.pending_demands(),
            storage=path or "memory",
            metrics_address=self.metrics_address,
        )

    # -- metrics ----------------------------------------------------------------------
    @property
    def metrics_address(self) -> str:
        """``host:port`` of this service's Prometheus endpoint ("" while it serves none)."""
        return self.metrics.address if self.metrics is not None else ""

    async def start_metrics(self, host: str, port: int) -> None:
        """Serve this service's metrics on ``host:port`` (0: a free port; token required)."""
        if port < 0 or not metrics_enabled():
            return
        # here, not at the top: a service without metrics never loads aiohttp
        from ember.metrics.assembly import control_exporter

        self.metrics = control_exporter(
            self.token,
            os.path.basename(self.session_dir.rstrip("/")),
            host,
            lambda: [
                (r.info.state, r.info.class_name) for r in self.actors.actors.values()
            ],
            lambda: [g.state for g in self.placement_groups.groups.values()],
            self._task_counts(),
        )
        await self.metrics.start(host, port)
        self.targets.set_control(host, self.metrics.port)
        logger.info("metrics on http://%s/metrics", self.metrics.address)

    def _task_counts(self) -> Callable[[], TaskCounts] | None:
        """Task counts by (state, name, is_retry), when task events are kept here."""
        counts = getattr(getattr(self, "task_events", None), "state_counts", None)
        return counts if callable(counts) else None

    # -- kv and jobs ------------------------------------------------------------------
    def kv_put(self, conn: Connection, req: Any, bufs: Any) -> KvPutReply:
        key = (req.namespace, req.key)
        if not req.overwrite and key in self.kv:
            return KvPutReply(added=False)
        self.kv[key] = req.value
        self.storage.put("kv", msgspec.msgpack.encode(key), req.value)
        return KvPutReply(added=True)

    def register_job(self, conn: Connection, req: Any, bufs: Any) -> RegisterJobReply:
        if req.job_id:
            # A driver reconnecting after this service restarted: its job goes on.
            job_id = req.job_id
            self._unclaimed_jobs.discard(job_id)
            self._next_job = max(self._next_job, int.from_bytes(job_id, "little") + 1)
        else:
            job_id = JobID(self._next_job.to_bytes(4, "little")).binary()
            self._next_job += 1
        self.jobs[job_id] = {
            "namespace": req.namespace,
            "pid": req.driver_pid,
            "alive": True,
            "worker_id": req.worker_id,
            "entrypoint": req.entrypoint,
            "start_time": self.jobs.get(job_id, {}).get("start_time") or time.time(),
        }
        self.storage.put("jobs", job_id, msgspec.msgpack.encode(self.jobs[job_id]))
        conn.on_close(lambda c: self._job_done(job_id))
        return RegisterJobReply(job_id=job_id, namespace=req.namespace)

    def _job_done(self, job_id: bytes) -> None:
        job = self.jobs.get(job_id)
        if job is None or not job["alive"]:
            return
        self._unclaimed_jobs.discard(job_id)
        job["alive"] = False
        job["end_time"] = time.time()
        self.storage.put("jobs", job_id, msgspec.msgpack.encode(job))
        self.actors.on_job_finished(job_id)
        self.placement_groups.on_job_finished(job_id)
        self.dead_owners.died([job.get("worker_id", b"")])

    # -- actors and placement groups ----------------------------------------------------
    def kill_actor(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        self.actors.kill(
            req.actor_id,
            req.no_restart,
            OUT_OF_SCOPE_CAUSE if req.out_of_scope else None,
        )
        return Empty()

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


def _authenticated(conn: Connection) -> bool:
    """Whether ``conn`` finished its handshake (frames may be sent on it)."""
    ready = conn.ready
    return ready.done() and not ready.cancelled() and ready.exception() is None


async def _main(
    session_dir: str,
    unix: str,
    host: str,
    port: int,
    ready_fd: int,
    storage: str,
    metrics_port: int = -1,
) -> None:
    svc = ControlService(
        token_from_env(), session_dir, open_storage(storage, session_dir)
    )
    address = await svc.server.listen(f"unix:{unix}")
    make_private(unix)
    if host:  # no host: a one-machine cluster, reached through the unix socket only
        address = await svc.server.listen(f"tcp:{host}:{port}")
    await svc.start_metrics(
        host or "127.0.0.1", _metrics_port(metrics_port, svc.config)
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, svc.stopped.set)
    svc.targets.update(svc.nodes.nodes.values())
    signal_ready(ready_fd, address)
    monitor = loop.create_task(svc.monitor_nodes())
    recovery = loop.create_task(svc.recover())
    await svc.stopped.wait()
    monitor.cancel()
    recovery.cancel()
    svc.actors.close()
    svc.placement_groups.close()
    svc.server.close()
    svc.storage.close()
    try:
        os.unlink(unix)
    except FileNotFoundError:
        pass
    if svc.metrics is not None:
        # last: awaiting lets the loop run the callbacks of the closed connections,
        # which must find the storage closed (a stopped head forgets nothing)
        await svc.metrics.close()


def _metrics_port(given: int, config: Config) -> int:
    """``--metrics-export-port``, else the config's, else a free one if nodes export."""
    if given >= 0:
        return given
    if config.control_metrics_export_port >= 0:
        return config.control_metrics_export_port
    return 0 if config.metrics_export_port >= 0 else -1


def run(
    session_dir: str,
    unix: str,
    host: str,
    port: int,
    ready_fd: int,
    storage: str = "memory",
    metrics_port: int = -1,
) -> None:
    """Serve until SIGTERM.  ``storage``: ``memory``, ``sqlite`` or ``sqlite:PATH``.

    Listens on the unix socket ``unix`` and, unless ``host`` is empty, on TCP
    ``host:port``; the ready line is the TCP address (else the unix one).
    ``metrics_port``: its Prometheus endpoint's port on ``host`` (127.0.0.1 when
    empty); 0 a free one, -1 the config's (``EMBER_CONTROL_METRICS_EXPORT_PORT``).
    """
    die_with_parent()
    setup_daemon_logging("control")
    raise_nofile_limit()
    gc_tuning.tune()
    profile = profiling.start()  # EMBER_CONTROL_PROFILE; off by default
    loop = new_event_loop()
    try:
        loop.run_until_complete(
            _main(session_dir, unix, host, port, ready_fd, storage, metrics_port)
        )
    finally:
        loop.close()
        profiling.stop(profile)
