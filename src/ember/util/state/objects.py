"""The object refs of a cluster: ``list_objects``, ``get_objects``, ``summarize_objects``.

As Ray's ``ray.util.state``: every alive node is asked for the refs its
processes hold (``node.list_objects``, which asks each core worker on it,
``worker.list_objects``), and the rows are Ray's ``ObjectState`` fields.  One
object appears once per process that holds a ref to it.  The same collection
feeds ``ember memory`` (:func:`collect`), which also reads each node's store
statistics (``node.get_stats``).

Data flow::

    caller --control.get_nodes--> control service
       |--node.list_objects--> each node --worker.list_objects--> its workers, drivers
       '--node.get_stats-----> each node (store use, spilling; for ``ember memory``)
"""

from __future__ import annotations

import asyncio
import dataclasses
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ember.protocol.messages import (
    CoreWorkerObjects,
    Empty,
    GetNodesReply,
    ListObjectsRequest,
    NodeInfo,
    NodeObjectsReply,
    NodeStatsReply,
)
from ember.rpc.errors import RpcError
from ember.util.state import _reach
from ember.util.state._reach import StateApiError

DEFAULT_LIMIT = 100
DEFAULT_RPC_TIMEOUT = 30
#: refs one core worker reports at most (Ray's RAY_MAX_LIMIT_FROM_DATA_SOURCE)
MAX_LIMIT_FROM_DATA_SOURCE = 10_000

CALL_SITE_WARNING = (
    "Call sites are not recorded. To record where each ObjectRef is created, set "
    "EMBER_RECORD_REF_CREATION_SITES=1 (or RAY_record_ref_creation_sites=1) in the "
    "environment of `ember start` and of the driver."
)


@dataclass
class ObjectState:
    """One object ref held by one process (Ray's ``ObjectState``)."""

    #: the object's id (hex)
    object_id: str
    #: its size in bytes; -1 while unknown
    object_size: int
    #: the status of the task that creates it (NIL: not known to this process)
    task_status: str
    #: attempts of that task, counting the current one
    attempt_number: int
    #: ACTOR_HANDLE, PINNED_IN_MEMORY, LOCAL_REFERENCE, USED_BY_PENDING_TASK,
    #: CAPTURED_IN_OBJECT or UNKNOWN_STATUS
    reference_type: str
    #: where the ref was created ("disabled" unless call sites are recorded)
    call_site: str
    #: the kind of process holding the ref: DRIVER or WORKER
    type: str
    #: the pid of the process holding the ref
    pid: int
    #: the IP address of that process's node
    ip: str

    def asdict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    # dict-like access, as Ray's state objects allow
    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        return getattr(self, key, default)


FIELDS = tuple(f.name for f in dataclasses.fields(ObjectState))


@dataclass
class NodeObjects:
    """What one node answered (its stats are None if it did not answer)."""

    info: NodeInfo
    stats: NodeStatsReply | None = None
    reply: NodeObjectsReply | None = None
    error: str = ""


@dataclass
class ObjectsSnapshot:
    """Every ref of the cluster as rows (Ray's fields plus ember's), and the nodes."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    nodes: list[NodeObjects] = field(default_factory=list)
    #: refs the core workers hold in all (more than ``rows`` if some were cut)
    total: int = 0
    callsite_enabled: bool = False

    def partial_failure_warning(self) -> str:
        failed = [n for n in self.nodes if n.reply is None]
        quiet = sum(n.reply.unresponsive for n in self.nodes if n.reply is not None)
        if not failed and not quiet:
            return ""
        parts = []
        if failed:
            names = ", ".join(f"{n.info.ip} ({n.error})" for n in failed)
            parts.append(f"{len(failed)} of {len(self.nodes)} nodes did not answer: {names}")
        if quiet:
            parts.append(f"{quiet} core worker(s) did not answer in time")
        return "The returned data may be incomplete: " + "; ".join(parts) + "."


def rows_of(worker: CoreWorkerObjects, spilled: set[bytes]) -> list[dict[str, Any]]:
    """One row per ref a core worker reported."""
    out = []
    for r in worker.refs:
        out.append(
            {
                "object_id": r.oid.hex(),
                "object_size": r.size,
                "task_status": r.task_status,
                "attempt_number": r.attempt_number,
                "reference_type": r.reference_type,
                "call_site": r.call_site or "disabled",
                "type": "DRIVER" if worker.is_driver else "WORKER",
                "pid": worker.pid,
                "ip": worker.ip,
                # ember's additions (ember memory; not in ObjectState)
                "node_id": worker.node_id.hex(),
                "worker_id": worker.worker_id.hex(),
                "store_node_id": r.node_id.hex(),
                "spilled": r.oid in spilled,
                "owned": r.owned,
            }
        )
    return out


async def collect_from(
    get_nodes: Callable[[], Awaitable[GetNodesReply]],
    call_node: Callable[[NodeInfo, str, Any, float], Awaitable[Any]],
    timeout: float,
    limit: int = MAX_LIMIT_FROM_DATA_SOURCE,
) -> ObjectsSnapshot:
    """Ask every alive node; ``call_node(info, method, request, timeout)`` -> reply."""
    reply = await get_nodes()
    alive = [n for n in reply.nodes if n.alive]
    req = ListObjectsRequest(timeout_s=max(timeout * 0.8, 0.05), limit=limit)

    async def one(info: NodeInfo) -> NodeObjects:
        out = NodeObjects(info)
        try:
            out.reply, out.stats = await asyncio.gather(
                call_node(info, "node.list_objects", req, timeout),
                call_node(info, "node.get_stats", Empty(), timeout),
            )
        except (RpcError, OSError, TimeoutError) as exc:
            out.error = str(exc) or type(exc).__name__
        return out

    nodes = list(await asyncio.gather(*(one(n) for n in alive)))
    spilled: set[bytes] = set()
    for n in nodes:
        if n.reply is not None:
            spilled.update(n.reply.spilled)
    snap = ObjectsSnapshot(nodes=nodes)
    for n in nodes:
        for w in n.reply.workers if n.reply is not None else ():
            snap.rows.extend(rows_of(w, spilled))
            snap.total += w.total
            snap.callsite_enabled = snap.callsite_enabled or w.call_sites
    return snap


def collect(
    address: str | None = None,
    timeout: float = DEFAULT_RPC_TIMEOUT,
    token: str | None = None,
) -> ObjectsSnapshot:
    """Every ref in the cluster at ``address`` (None: the current or recorded one)."""
    return _reach.run_on_cluster(
        address,
        lambda get_nodes, call_node: collect_from(get_nodes, call_node, timeout),
        timeout,
        token,
    )


def _matches(row: dict[str, Any], key: str, op: str, value: Any) -> bool:
    have = row.get(key)
    if isinstance(have, str) or isinstance(value, str):
        equal = str(have).lower() == str(value).lower()
    else:
        equal = have == value
    if op == "=":
        return equal
    if op == "!=":
        return not equal
    raise ValueError(f"Unsupported filter predicate {op!r}: use '=' or '!='.")


def filter_rows(
    rows: list[dict[str, Any]], filters: list[tuple[str, str, Any]] | None
) -> list[dict[str, Any]]:
    for f in filters or ():
        if not isinstance(f, tuple | list) or len(f) != 3:
            raise ValueError(
                f"A filter is a (key, predicate, value) tuple, e.g. "
                f"('reference_type', '=', 'LOCAL_REFERENCE'); got {f!r}."
            )
        key = f[0]
        if key not in FIELDS:
            raise ValueError(
                f"{key!r} is not a filterable column of objects: use one of "
                f"{', '.join(FIELDS)}."
            )
    return [
        r for r in rows if all(_matches(r, k, op, v) for k, op, v in filters or ())
    ]


def _state(row: dict[str, Any]) -> ObjectState:
    return ObjectState(**{k: row[k] for k in FIELDS})


def _missing_output(snap: ObjectsSnapshot, kept: int, raise_on_missing: bool) -> None:
    warning = snap.partial_failure_warning()
    if raise_on_missing and warning:
        raise StateApiError(
            "Failed to retrieve all objects from the cluster: some of its processes "
            "could not be reached. Pass raise_on_missing_output=False to accept the "
            f"partial answer. {warning}"
        )
    if raise_on_missing and snap.total > kept:
        raise StateApiError(
            f"Failed to retrieve all {snap.total} objects: the core workers reported "
            f"only {kept} (each reports at most {MAX_LIMIT_FROM_DATA_SOURCE}). Pass "
            "raise_on_missing_output=False to accept the partial answer."
        )
    if warning:
        warnings.warn(warning, stacklevel=3)


def list_objects(
    address: str | None = None,
    filters: list[tuple[str, str, Any]] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> list[ObjectState]:
    """The object refs held in the cluster, one entry per (object, holding process).

    ``filters``: ``(key, "=" | "!=", value)`` tuples over ObjectState's fields
    (strings compare case-insensitively); ``limit``: at most this many entries,
    sorted by object id; a warning says when more matched.
    """
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError(f"limit must be a non-negative int, got {limit!r}")
    snap = collect(address, timeout)
    _missing_output(snap, len(snap.rows), raise_on_missing_output)
    rows = filter_rows(snap.rows, filters)
    rows.sort(key=lambda r: r["object_id"])
    if len(rows) > limit:
        warnings.warn(
            f"{len(rows)} objects match, {limit} are returned (limit={limit}). Pass a "
            "larger limit, or filters, to see the rest.",
            stacklevel=2,
        )
    return [_state(r) for r in rows[:limit]]


def get_objects(
    id: str,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> list[ObjectState] | None:
    """Every process's entry for the object ``id`` (hex); None if nobody holds it."""
    if not isinstance(id, str):
        raise TypeError(f"id must be the object's hex id (str), got {type(id).__name__}")
    snap = collect(address, timeout)
    rows = [r for r in snap.rows if r["object_id"] == id.lower()]
    if not rows:
        return None
    return [_state(r) for r in rows]


def summary_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Ray's ``ObjectSummaries`` as a dict, grouped by call site."""
    summary: dict[str, dict[str, Any]] = {}
    workers: dict[str, set[int]] = {}
    nodes: dict[str, set[str]] = {}
    total_objects, total_mb, enabled = 0, 0.0, True
    for r in rows:
        key = r["call_site"]
        if key == "disabled":
            enabled = False
        s = summary.get(key)
        if s is None:
            s = summary[key] = {
                "total_objects": 0,
                "total_size_mb": 0.0,
                "total_num_workers": 0,
                "total_num_nodes": 0,
                "task_state_counts": {},
                "task_attempt_number_counts": {},
                "ref_type_counts": {},
            }
            workers[key], nodes[key] = set(), set()
        for name, value in (
            ("task_state_counts", r["task_status"]),
            ("task_attempt_number_counts", str(r["attempt_number"])),
            ("ref_type_counts", r["reference_type"]),
        ):
            s[name][value] = s[name].get(value, 0) + 1
        s["total_objects"] += 1
        total_objects += 1
        if r["object_size"] != -1:
            mb = r["object_size"] / 1024**2
            s["total_size_mb"] += mb
            total_mb += mb
        workers[key].add(r["pid"])
        nodes[key].add(r["ip"])
    for key, s in summary.items():
        s["total_num_workers"] = len(workers[key])
        s["total_num_nodes"] = len(nodes[key])
    return {
        "summary": summary,
        "total_objects": total_objects,
        "total_size_mb": total_mb,
        "callsite_enabled": enabled,
        "summary_by": "callsite",
    }


def summarize_objects(
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
) -> dict[str, Any]:
    """The refs of the cluster summarised by call site: ``{"cluster": {...}}``."""
    snap = collect(address, timeout)
    _missing_output(snap, len(snap.rows), raise_on_missing_output)
    return {"cluster": summary_of(snap.rows)}
