"""Message structs for every RPC method, and the method table.

Methods are named ``service.verb_noun``.  Services: ``control`` (the control
service), ``node`` (a node daemon), ``worker`` (any core worker: drivers and
workers both serve it, as owners of objects and executors of tasks).
"""

from __future__ import annotations

from typing import Any

import msgspec

from ember.common.config import Config
from ember.rpc.connection import Schema
from ember.rpc.limits import Limits


class Msg(msgspec.Struct, array_like=True, omit_defaults=True):
    """Base of every message."""


class Empty(Msg):
    """No fields."""


# -- shared records -------------------------------------------------------------
class Address(Msg):
    """Where a core worker serves ``worker.*``."""

    worker_id: bytes
    node_id: bytes
    tcp: str
    unix: str = ""


class NodeInfo(Msg):
    """A node as the control service knows it."""

    node_id: bytes
    address: str  # tcp:host:port of the node daemon
    unix: str
    ip: str
    resources: dict[str, float]
    available: dict[str, float] = {}
    alive: bool = True
    is_head: bool = False
    labels: dict[str, str] = {}
    hostname: str = ""
    object_store_bytes: int = 0
    session_dir: str = ""
    death_reason: str = ""
    start_time: float = 0.0
    #: bytes of its object store in use (from its last heartbeat)
    store_used: int = 0
    #: the port of its Prometheus endpoint on ``ip`` (0: it exports no metrics)
    metrics_port: int = 0


class ObjRef(Msg):
    """An object id with its owner's address (an ``ObjectRef`` on the wire)."""

    oid: bytes
    owner: Address | None = None


class ReturnObject(Msg):
    """One produced value: inline (in the frame buffers) or in a node's store."""

    oid: bytes
    nbufs: int = 0  # inline: frame buffers [data, *oob]
    node_id: bytes = b""  # stored: which node holds the primary copy
    size: int = 0
    is_error: bool = False
    contained: list[ObjRef] = []


# -- control service --------------------------------------------------------------
class RegisterNodeRequest(Msg):
    info: NodeInfo
    #: the node's live workers (a node registering again with a restarted control
    #: service: its actors whose worker is not among them died meanwhile)
    live_workers: list[bytes] = []


class HeartbeatRequest(Msg):
    node_id: bytes
    available: dict[str, float]
    pending_demands: list[dict[str, float]] = []
    infeasible: list[dict[str, float]] = []
    #: totals, when they changed (placement-group bundles add resources)
    total: dict[str, float] = {}
    #: bytes of the node's object store held by objects now
    store_used: int = 0


class GetNodesReply(Msg):
    nodes: list[NodeInfo]


class KvPutRequest(Msg):
    namespace: str
    key: bytes
    value: bytes
    overwrite: bool = True


class KvPutReply(Msg):
    added: bool


class KvGetRequest(Msg):
    namespace: str
    key: bytes


class KvGetReply(Msg):
    value: bytes | None


class RegisterJobRequest(Msg):
    namespace: str
    driver_pid: int
    entrypoint: str = ""
    #: a driver that reconnects to a restarted control service names its job
    job_id: bytes = b""
    #: the driver's worker id: the objects it owns are freed everywhere when it exits
    worker_id: bytes = b""


class RegisterJobReply(Msg):
    job_id: bytes
    namespace: str


class ActorSpec(Msg):
    """Everything needed to create (and re-create) an actor."""

    actor_id: bytes
    job_id: bytes
    class_key: bytes
    class_name: str
    args: bytes  # serialized (args, kwargs)
    arg_bufs: list[bytes] = []
    ref_args: list[ObjRef] = []
    resources: dict[str, float] = {}
    placement_resources: dict[str, float] = {}
    name: str = ""
    namespace: str = ""
    detached: bool = False
    max_restarts: int = 0
    max_task_retries: int = 0
    max_concurrency: int = 1
    is_async: bool = False
    env_vars: dict[str, str] = {}
    owner: Address | None = None
    methods: dict[str, Any] = {}  # method name -> {"num_returns": ...}
    scheduling: dict[str, Any] = {}
    #: concurrency group -> its limit (the default group "" has max_concurrency)
    concurrency_groups: dict[str, int] = {}
    #: the resolved runtime env (``ember.runtime_env``: package URIs, pip, config)
    runtime_env: dict[str, Any] = {}


class CreateActorRequest(Msg):
    spec: ActorSpec
    get_if_exists: bool = False


class ActorInfo(Msg):
    actor_id: bytes
    state: str  # PENDING | ALIVE | RESTARTING | DEAD
    address: Address | None = None
    epoch: int = 0  # incremented on every (re)start
    death_cause: str = ""
    name: str = ""
    namespace: str = ""
    class_name: str = ""
    pid: int = 0
    spec: ActorSpec | None = None
    unschedulable: bool = False  # DEAD because it could never be placed
    init_failed: bool = False  # DEAD because its constructor raised


class GetActorInfoRequest(Msg):
    actor_id: bytes
    wait_after_epoch: int = -1  # wait until ALIVE with epoch > this, or DEAD
    timeout_s: float = 0.0


class GetNamedActorRequest(Msg):
    name: str
    namespace: str


class ListNamedActorsRequest(Msg):
    namespace: str
    all_namespaces: bool = False


class ListNamedActorsReply(Msg):
    actors: list[dict[str, str]]


class KillActorRequest(Msg):
    actor_id: bytes
    no_restart: bool = True
    #: the owner's last handle is gone (the death cause says so), not ember.kill()
    out_of_scope: bool = False


class ActorDiedRequest(Msg):
    actor_id: bytes
    worker_id: bytes
    reason: str
    intended: bool = False


class ListActorsReply(Msg):
    actors: list[ActorInfo]


# -- node daemon -------------------------------------------------------------------
class RegisterWorkerRequest(Msg):
    worker_id: bytes
    pid: int
    address: Address


class RegisterWorkerReply(Msg):
    node_id: bytes
    store_path: str
    store_bytes: int


class LeaseRequest(Msg):
    resources: dict[str, float]
    job_id: bytes
    name: str = ""
    for_actor: bool = False
    env_key: str = ""
    env_vars: dict[str, str] = {}
    strategy: dict[str, Any] = {}
    spilled: bool = False
    #: whether what runs on the lease is retried if its worker dies (the memory
    #: monitor kills retriable work first): max_retries != 0, max_restarts != 0
    retriable: bool = True
    #: the worker id of the process the work belongs to (the memory monitor groups
    #: by it, so one greedy owner loses its tasks before anyone else's)
    owner_id: bytes = b""
    #: the resolved runtime env the worker must start in ({}: the base env)
    runtime_env: dict[str, Any] = {}


class LeaseReply(Msg):
    lease_id: int = 0
    worker: Address | None = None
    pid: int = 0
    infeasible: bool = False
    spillback: str = ""  # address of another node to ask
    spillback_node: bytes = b""
    unschedulable: str = ""  # why the request can never be placed
    assigned: dict[str, Any] = {}
    #: the runtime env could not be set up on this node: why (installer output)
    runtime_env_error: str = ""


class ReturnLeaseRequest(Msg):
    lease_id: int
    worker_dead: bool = False


class WorkerDeathRequest(Msg):
    """Why the worker of lease ``lease_id`` died (asked by its holder after losing it)."""

    lease_id: int
    #: how long the daemon may wait for the process to be reaped
    timeout_s: float = 2.0


class WorkerDeathReply(Msg):
    """A worker's death cause, as its node daemon saw it."""

    #: "oom" (the memory monitor killed it), "signal", "exit", "" (unknown)
    kind: str = ""
    #: the signal's name when it was killed by one ("SIGKILL", "SIGSEGV")
    signal: str = ""
    exit_code: int = 0
    #: a sentence for the user: the signal or exit code, or the memory report
    message: str = ""


class CreateObjectRequest(Msg):
    oid: bytes
    size: int
    #: the owner's worker and node ids: the node frees the object when its owner dies
    owner: bytes = b""
    owner_node: bytes = b""


class CreateObjectReply(Msg):
    offset: int
    #: a sealed copy of it is here already (a task run again): write nothing
    exists: bool = False


class SealObjectRequest(Msg):
    oid: bytes
    #: also pin it for the sealing connection (a put whose owner keeps it mapped)
    pin: bool = False


class GetObjectsRequest(Msg):
    oids: list[bytes]


class ObjectLocation(Msg):
    offset: int
    size: int


class GetObjectsReply(Msg):
    found: list[ObjectLocation | None]


class ObjectIdsRequest(Msg):
    oids: list[bytes]


class NodeStatsReply(Msg):
    node_id: bytes
    resources: dict[str, float]
    available: dict[str, float]
    store_used: int
    store_capacity: int
    store_objects: int
    workers: int
    idle_workers: int
    store_path: str = ""
    store_bytes: int = 0
    #: object spilling: the node's spill folder and counters since it started
    spill_dir: str = ""
    spilled_objects: int = 0
    spilled_bytes: int = 0
    restored_objects: int = 0
    restored_bytes: int = 0
    #: spill files on disk now, and the bytes of live objects in them
    spill_files: int = 0
    spilled_bytes_on_disk: int = 0
    #: workers the memory monitor killed since the daemon started
    memory_kills: int = 0


class PullObjectRequest(Msg):
    """Make a local copy of ``oid``, whose copy lives on node ``node_id``."""

    oid: bytes
    node_id: bytes


class TransferPinReply(Msg):
    size: int
    found: bool
    #: the object's owner (worker and node ids), recorded with the copy
    owner: bytes = b""
    owner_node: bytes = b""


class ReadChunkRequest(Msg):
    oid: bytes
    offset: int
    length: int


class NodeDiedMessage(Msg):
    node_id: bytes
    reason: str = ""


class OwnersDiedMessage(Msg):
    """Owners that died: workers by id, and every owner that lived on a dead node."""

    worker_ids: list[bytes] = []
    node_ids: list[bytes] = []


class PlacementGroupInfo(Msg):
    """A placement group as the control service knows it."""

    pg_id: bytes
    bundles: list[dict[str, float]]
    strategy: str
    state: str = "PENDING"  # PENDING | CREATED | REMOVED
    name: str = ""
    namespace: str = ""
    job_id: bytes = b""
    detached: bool = False
    bundle_nodes: list[bytes] = []


class PlacementGroupRequest(Msg):
    pg_id: bytes = b""
    name: str = ""
    namespace: str = ""
    timeout_s: float = 0.0


class WaitPlacementGroupReply(Msg):
    ready: bool
    state: str


class ListPlacementGroupsReply(Msg):
    groups: list[PlacementGroupInfo]


class PrepareBundlesRequest(Msg):
    pg_id: bytes
    indexes: list[int]
    bundles: list[dict[str, float]]


class PrepareBundlesReply(Msg):
    ok: bool


class LogLinesMessage(Msg):
    job_id: bytes
    prefix: str
    lines: list[str]
    is_err: bool = False
    #: the source, for the driver's prefix and its deduplication (0/"": use ``prefix``)
    pid: int = 0
    ip: str = ""
    #: the task's or the actor class's name
    name: str = ""


class SubscribeLogsRequest(Msg):
    job_id: bytes


class ListLogsRequest(Msg):
    """``node.list_logs``: the files of the node's ``<session>/logs`` matching ``glob``."""

    glob: str = "*"


class ListLogsReply(Msg):
    #: paths relative to the logs folder, sorted
    files: list[str] = []


class ReadLogRequest(Msg):
    """``node.read_log``: bytes of one file of the node's logs folder.

    ``offset >= 0`` reads from there (past the end of a file that was rotated
    meanwhile: from 0); else from the start of its last ``tail_lines`` lines
    (-1: the whole file).
    """

    filename: str
    offset: int = -1
    tail_lines: int = -1
    max_bytes: int = 1 << 20


class ReadLogReply(Msg):
    data: bytes = b""
    #: where ``data`` starts and ends in the file, and the file's size
    start: int = 0
    end: int = 0
    size: int = 0


# -- core workers ------------------------------------------------------------------
class TaskSpec(Msg):
    """A task (or an actor method call) as pushed to the executing worker."""

    task_id: bytes
    job_id: bytes
    name: str
    function_key: bytes = b""  # normal tasks
    method: str = ""  # actor tasks
    args: bytes = b""
    nargbufs: int = 0
    args_ref: ObjRef | None = None  # args too large to inline live in the store
    ref_args: list[ObjRef] = []
    #: per ref_arg, how many frames (after the args' own) carry its value, which the
    #: caller already had; -1: the worker fetches it.  Empty: none was inlined.
    inlined: list[int] = []
    num_returns: int = 1
    streaming: bool = False
    owner: Address | None = None
    retry_exceptions: bool = False
    retry_exception_types: bytes = b""
    env_vars: dict[str, str] = {}
    seq: int = 0
    attempt: int = 0
    resources: dict[str, float] = {}
    actor_id: bytes = b""
    strategy: dict[str, Any] = {}
    gpu_ids: list[int] = []
    #: normal tasks: the worker exits after running this function this often (0: never)
    max_calls: int = 0
    #: actor calls: the concurrency group that runs it ("": by its method, or default)
    concurrency_group: str = ""
    #: the resolved runtime env it runs in (what runtime_context shows; inherited
    #: by the tasks it submits)
    runtime_env: dict[str, Any] = {}


class TaskReply(Msg):
    returns: list[ReturnObject] = []
    # A system-level failure (not a user exception): e.g. actor creation failed.
    error: str = ""
    retryable_error: bool = False
    exit_worker: bool = False
    num_streamed: int = 0


class CreateActorOnWorkerRequest(Msg):
    spec: ActorSpec
    epoch: int
    gpu_ids: list[int] = []


class CreateActorOnWorkerReply(Msg):
    ok: bool
    error: bytes = b""  # pickled TaskError of a failing __init__
    error_text: str = ""


class CancelTaskRequest(Msg):
    task_id: bytes
    force: bool = False
    recursive: bool = True


class GetObjectRequest(Msg):
    oid: bytes
    timeout_s: float = -1.0
    #: the node whose copy the asker could not read (the owner relocates or rebuilds it)
    lost_node: bytes = b""


class GetObjectReply(Msg):
    status: str  # READY | PENDING | FREED | UNKNOWN
    obj: ReturnObject | None = None


class BorrowRequest(Msg):
    oids: list[bytes]
    borrower: bytes  # worker id


class GeneratorItemMessage(Msg):
    task_id: bytes
    index: int
    obj: ReturnObject


class ReleaseEscrowRequest(Msg):
    task_id: bytes


class ExitRequest(Msg):
    force: bool = False
    reason: str = ""


# -- cluster status (``ember status``) --------------------------------------------
class ResourceDemand(Msg):
    """A resource shape some node could not grant yet, and how many wait for it."""

    resources: dict[str, float]
    count: int = 1
    infeasible: bool = False  # no live node's totals could ever hold it


class GetClusterStatusReply(Msg):
    nodes: list[NodeInfo]
    demands: list[ResourceDemand] = []
    storage: str = ""  # "memory" or the SQLite path of the control service
    #: ``host:port`` of the control service's own Prometheus endpoint ("": none)
    metrics_address: str = ""


# -- user metrics (``ember.util.metrics``), pushed by every process to its node ----
class MetricPoint(Msg):
    """One series of a user's metric: what changed since the process's last report."""

    name: str
    kind: str  # "counter" | "gauge" | "histogram"
    description: str = ""
    tags: dict[str, str] = {}
    #: counter: the increase since the last report; gauge: the value now
    value: float = 0.0
    #: histogram: the bucket bounds, the count per bucket since the last report
    #: (one more than the bounds: the last is past every bound) and their sum
    boundaries: list[float] = []
    buckets: list[float] = []
    total: float = 0.0


class ReportMetricsRequest(Msg):
    points: list[MetricPoint]


# -- task events and the state API (``ember.util.state``) ------------------------
class TaskEvent(Msg):
    """One state change of one task attempt that carries more than a time (an
    error, or an actor creation's spec), as a core worker saw it."""

    task_id: bytes
    attempt: int
    #: Ray's task state names: PENDING_ARGS_AVAIL, ..., RUNNING, FINISHED, FAILED
    state: str
    time_s: float
    name: str = ""
    func_name: str = ""
    #: NORMAL_TASK | ACTOR_TASK | ACTOR_CREATION_TASK
    type: str = ""
    job_id: bytes = b""
    actor_id: bytes = b""
    parent_task_id: bytes = b""
    resources: dict[str, float] = {}
    pg_id: bytes = b""
    error_type: str = ""
    error_message: str = ""
    #: the sender runs it: its worker, node and pid are this attempt's
    executed: bool = False


#: a submitted task in a batch of task events (``TaskEventsBatch.submits``)
SubmitRow = tuple[bytes, int, float, str, bytes, bytes, bytes, dict[str, float], bytes]
#: a plain state change in a batch of task events (``TaskEventsBatch.states``)
StateRow = tuple[bytes, int, str, float]


class TaskEventsBatch(Msg):
    """A core worker's task events since its last batch, and who it is."""

    worker_id: bytes
    node_id: bytes
    pid: int
    ip: str = ""
    #: WORKER | DRIVER
    worker_type: str = "WORKER"
    job_id: bytes = b""
    #: the rarer events that carry more than a time: failures, actor creations
    events: list[TaskEvent] = []
    #: events this worker dropped because its buffer was full
    dropped: int = 0
    #: the tasks and actor calls this worker submitted, one row each:
    #: (task_id, attempt, time_s, name, job_id, actor_id, parent_task_id,
    #: resources, pg_id); tuples, so the batch encodes them in one C call
    submits: list[SubmitRow] = []
    #: plain state changes (no error) the submitter saw: (task_id, attempt, state, time_s)
    states: list[StateRow] = []
    #: plain state changes of what this worker ran (its node, worker and pid are theirs)
    exec_states: list[StateRow] = []


class TaskEventsBatchWire(Msg):
    """A :class:`TaskEventsBatch` as the control service reads it: the same fields,
    the events left encoded until someone asks for them (``control/task_events.py``)."""

    worker_id: bytes
    node_id: bytes
    pid: int
    ip: str = ""
    worker_type: str = "WORKER"
    job_id: bytes = b""
    events: msgspec.Raw = msgspec.Raw()
    dropped: int = 0
    submits: msgspec.Raw = msgspec.Raw()
    states: msgspec.Raw = msgspec.Raw()
    exec_states: msgspec.Raw = msgspec.Raw()


class StateFilter(Msg):
    """``(key, predicate, value)`` of the state API; predicate ``=`` or ``!=``."""

    key: str
    predicate: str
    value: Any = None


class ListStateRequest(Msg):
    #: tasks | actors | nodes | jobs | workers | placement_groups
    resource: str
    filters: list[StateFilter] = []
    limit: int = 100
    detail: bool = False


class ListStateReply(Msg):
    """Rows as dicts of the state API's columns (ids in hex)."""

    rows: list[dict[str, Any]] = []
    #: what the cluster has, what was kept (the rest was dropped), what matched
    total: int = 0
    num_after_truncation: int = 0
    num_filtered: int = 0


class DrainNodeRequest(Msg):
    """Stop an idle node (the autoscaler's scale-down); refused unless it is idle."""

    node_id: bytes
    #: why, recorded as the node's death reason ("idle for 62 s")
    reason: str = ""


class DrainNodeReply(Msg):
    accepted: bool
    #: why the node refused (it runs work or holds objects)
    rejection: str = ""


# -- runtime env packages (``control/packages.py``) -----------------------------
class PutPackageRequest(Msg):
    """One chunk of a working_dir / py_modules package (content-addressed URI)."""

    uri: str
    index: int
    chunks: int
    size: int
    data: bytes = b""


class PutPackageReply(Msg):
    complete: bool = False


class GetPackageRequest(Msg):
    uri: str
    #: the chunk wanted; -1 asks only whether the package is stored, and its shape
    index: int = -1


class GetPackageReply(Msg):
    found: bool = False
    chunks: int = 0
    size: int = 0
    data: bytes = b""


class PrepareRuntimeEnvRequest(Msg):
    """Set a job's runtime env up on this node now (``config.eager_install``)."""

    runtime_env: dict[str, Any] = {}


# -- object references (list_objects, ``ember memory``) ------------------------------
class ListObjectsRequest(Msg):
    """Ask a core worker, or a node for all of its core workers, which refs they hold."""

    #: how long a node waits for each of its core workers
    timeout_s: float = 10.0
    #: at most this many refs per core worker (the rest are only counted)
    limit: int = 10_000


class RefRecord(Msg):
    """One object ref a core worker holds, as ``ray memory`` shows it."""

    oid: bytes
    #: bytes of the value, -1 while unknown (pending, or a borrowed ref not read)
    size: int
    reference_type: str
    #: where the ref was created ("" unless EMBER_RECORD_REF_CREATION_SITES=1)
    call_site: str = ""
    task_status: str = "NIL"
    #: attempts of the task that makes it (1 = the first run)
    attempt_number: int = 1
    #: the node whose store holds the primary copy (b"" for inline values)
    node_id: bytes = b""
    #: whether the value lives in a node's store (not inline in the process)
    stored: bool = False
    #: whether a spill file holds it (filled in by that node)
    spilled: bool = False
    owned: bool = True
    local_refs: int = 0
    submitted_refs: int = 0
    borrowers: int = 0


class CoreWorkerObjects(Msg):
    """A core worker's refs (``worker.list_objects``)."""

    worker_id: bytes
    pid: int
    is_driver: bool
    ip: str
    node_id: bytes
    refs: list[RefRecord] = []
    #: refs it holds in all (more than ``refs`` when the limit cut the list)
    total: int = 0
    #: whether call sites are recorded in that process
    call_sites: bool = False


class NodeObjectsReply(Msg):
    """Every core worker's refs on one node (``node.list_objects``)."""

    node_id: bytes
    workers: list[CoreWorkerObjects] = []
    #: core workers of the node that did not answer in time
    unresponsive: int = 0
    #: ids of the objects this node has spilled to disk (up to the request's limit)
    spilled: list[bytes] = []


class RegisterDriverMessage(Msg):
    """A driver tells its node daemon it is there (so the node can list its refs)."""

    worker_id: bytes
    pid: int


class ProcessStats(Msg):
    """One worker or driver process of a node, as ``node.get_system_stats`` sees it."""

    pid: int
    worker_id: bytes = b""
    is_driver: bool = False
    #: user + system CPU seconds since the process started
    cpu_s: float = 0.0
    rss: int = 0
    alive: bool = True


class SystemStatsReply(Msg):
    """``node.get_system_stats``: the machine's counters, read when asked (psutil).

    Counters are cumulative (CPU seconds, bytes sent and received): whoever
    samples them (the dashboard) takes rates between two readings, so any
    number of readers get right figures.
    """

    node_id: bytes
    #: epoch seconds of the reading
    time_s: float
    cpu_count: int = 0
    #: CPU seconds of every CPU since boot: busy (not idle or iowait), and all
    cpu_busy_s: float = 0.0
    cpu_total_s: float = 0.0
    mem_total: int = 0
    mem_used: int = 0
    #: the file system of the session folder
    disk_total: int = 0
    disk_used: int = 0
    net_sent: int = 0
    net_recv: int = 0
    store_used: int = 0
    store_total: int = 0
    #: bytes of live objects in spill files
    store_spilled: int = 0
    processes: list[ProcessStats] = []


METHODS: dict[str, tuple[type | None, type | None]] = {
    # control service
    "control.register_node": (RegisterNodeRequest, Empty),
    "control.heartbeat": (HeartbeatRequest, None),
    "control.get_nodes": (Empty, GetNodesReply),
    "control.kv_put": (KvPutRequest, KvPutReply),
    "control.kv_get": (KvGetRequest, KvGetReply),
    "control.register_job": (RegisterJobRequest, RegisterJobReply),
    "control.create_actor": (CreateActorRequest, ActorInfo),
    "control.get_actor_info": (GetActorInfoRequest, ActorInfo),
    "control.get_named_actor": (GetNamedActorRequest, ActorInfo),
    "control.list_named_actors": (ListNamedActorsRequest, ListNamedActorsReply),
    "control.list_actors": (Empty, ListActorsReply),
    "control.kill_actor": (KillActorRequest, Empty),
    "control.actor_died": (ActorDiedRequest, None),
    "control.job_finished": (RegisterJobReply, None),
    "control.create_placement_group": (PlacementGroupInfo, Empty),
    "control.remove_placement_group": (PlacementGroupRequest, Empty),
    "control.wait_placement_group": (PlacementGroupRequest, WaitPlacementGroupReply),
    "control.get_placement_group": (PlacementGroupRequest, PlacementGroupInfo),
    "control.list_placement_groups": (Empty, ListPlacementGroupsReply),
    "node.prepare_bundles": (PrepareBundlesRequest, PrepareBundlesReply),
    "node.commit_bundles": (PlacementGroupRequest, Empty),
    "node.cancel_bundles": (PlacementGroupRequest, Empty),
    "control.get_cluster_status": (Empty, GetClusterStatusReply),
    # node daemon
    "node.register_worker": (RegisterWorkerRequest, RegisterWorkerReply),
    "node.request_worker_lease": (LeaseRequest, LeaseReply),
    "node.return_worker_lease": (ReturnLeaseRequest, None),
    "node.get_worker_death": (WorkerDeathRequest, WorkerDeathReply),
    "node.create_object": (CreateObjectRequest, CreateObjectReply),
    "node.seal_object": (SealObjectRequest, Empty),
    "node.abort_object": (SealObjectRequest, None),
    "node.get_objects": (GetObjectsRequest, GetObjectsReply),
    "node.release_objects": (ObjectIdsRequest, None),
    "node.free_objects": (ObjectIdsRequest, None),
    "node.get_stats": (Empty, NodeStatsReply),
    "node.worker_log": (LogLinesMessage, None),
    "node.subscribe_logs": (SubscribeLogsRequest, Empty),
    "node.shutdown": (Empty, None),
    "node.worker_blocked": (Empty, None),
    "node.cluster_changed": (Empty, None),
    "node.pull_object": (PullObjectRequest, Empty),
    "node.pin_for_transfer": (SealObjectRequest, TransferPinReply),
    "node.read_chunk": (ReadChunkRequest, Empty),
    "node.release_transfer": (SealObjectRequest, None),
    "node.owners_died": (OwnersDiedMessage, None),
    # a worker asked to exit for idleness owns objects still in use: it stays
    "node.exit_declined": (Empty, None),
    "worker.node_died": (NodeDiedMessage, None),
    "worker.add_location": (PullObjectRequest, None),
    # the node's store needs room: drop cached mappings of these that no value uses
    "worker.drop_cached_objects": (ObjectIdsRequest, None),
    "node.worker_unblocked": (Empty, None),
    # core workers (drivers and workers)
    "worker.push_task": (TaskSpec, TaskReply),
    "worker.create_actor": (CreateActorOnWorkerRequest, CreateActorOnWorkerReply),
    "worker.cancel_task": (CancelTaskRequest, Empty),
    "worker.exit": (ExitRequest, None),
    "worker.get_object": (GetObjectRequest, GetObjectReply),
    "worker.add_borrower": (BorrowRequest, Empty),
    "worker.remove_borrower": (BorrowRequest, None),
    "worker.generator_item": (GeneratorItemMessage, None),
    "worker.release_escrow": (ReleaseEscrowRequest, None),
    "worker.log_lines": (LogLinesMessage, None),
    # user metrics of a driver or worker, for its node's Prometheus endpoint
    "node.report_metrics": (ReportMetricsRequest, None),
    # a node's log files (node/log_files.py)
    "node.list_logs": (ListLogsRequest, ListLogsReply),
    "node.read_log": (ReadLogRequest, ReadLogReply),
    # task events and the state API
    "control.add_task_events": (TaskEventsBatchWire, None),
    "control.list_tasks": (ListStateRequest, ListStateReply),
    "control.list_state": (ListStateRequest, ListStateReply),
    # the autoscaler's scale-down: the control service asks the node, which stops if idle
    "control.drain_node": (DrainNodeRequest, DrainNodeReply),
    "node.drain": (DrainNodeRequest, DrainNodeReply),
    # runtime env packages (control/packages.py)
    "control.put_package": (PutPackageRequest, PutPackageReply),
    "control.get_package": (GetPackageRequest, GetPackageReply),
    "node.prepare_runtime_env": (PrepareRuntimeEnvRequest, None),
    # object refs held by core workers (list_objects, ``ember memory``)
    "worker.list_objects": (ListObjectsRequest, CoreWorkerObjects),
    "node.list_objects": (ListObjectsRequest, NodeObjectsReply),
    "node.register_driver": (RegisterDriverMessage, None),
    # the machine's counters for the dashboard (node/system_stats.py)
    "node.get_system_stats": (Empty, SystemStatsReply),
}

#: the deadline class of every method that is not a short ``control`` RPC (see
#: ``ember.rpc.limits``: each class's deadline is an ``EMBER_RPC_*`` knob)
DEADLINE_CLASSES: dict[str, str] = {
    # Long polls: the server waits up to the request's own ``timeout_s`` (or, when
    # it is <= 0, until the state changes: then no deadline, the connection's loss
    # ends the wait, and the control service's node/worker death handling bounds it).
    "control.get_actor_info": "long_poll",
    "control.wait_placement_group": "long_poll",
    "worker.get_object": "long_poll",
    "node.get_worker_death": "long_poll",
    # Replies that come when user code finishes or resources free up.
    "worker.push_task": "push",
    "worker.create_actor": "push",
    "node.request_worker_lease": "push",
    # A whole pull: bounded by the per-chunk deadlines of the node-to-node leg.
    "node.pull_object": "push",
    # One object-transfer chunk (CHUNK_BYTES).
    "node.read_chunk": "transfer",
    # One runtime-env package chunk (runtime_env/upload.CHUNK_BYTES).
    "control.put_package": "transfer",
    "control.get_package": "transfer",
}

SCHEMA = Schema(METHODS, DEADLINE_CLASSES, Limits.from_config(Config.from_env()))
