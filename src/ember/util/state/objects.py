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
import warnings
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ember.api import runtime_access
from ember.common.state_filters import select
from ember.protocol.messages import (
    CoreWorkerObjects,
    Empty,
    GetNodesReply,
    ListObjectsRequest,
    ListStateReply,
    ListStateRequest,
    NodeInfo,
    NodeObjectsReply,
    NodeStatsReply,
)
from ember.rpc.errors import RpcError
from ember.runtime import current
from ember.util.state.client import Links, StateClient
from ember.util.state.common import (
    DEFAULT_LIMIT,
    DEFAULT_RPC_TIMEOUT,
    get_resource,
    list_resource,
)
from ember.util.state.exception import RayStateApiException
from ember.util.state.schemas import StateSchema, state_column

#: refs one core worker reports at most (Ray's RAY_MAX_LIMIT_FROM_DATA_SOURCE)
MAX_LIMIT_FROM_DATA_SOURCE = 10_000

CALL_SITE_WARNING = (
    "Call sites are not recorded. To record where each ObjectRef is created, set "
    "EMBER_RECORD_REF_CREATION_SITES=1 (or RAY_record_ref_creation_sites=1) in the "
    "environment of `ember start` and of the driver."
)


@dataclass(kw_only=True)
class ObjectState(StateSchema):
    """One object ref held by one process (Ray's ``ObjectState``)."""

    ID_COLUMN: ClassVar[str] = "object_id"

    #: the object's id (hex)
    object_id: str = state_column(filterable=True)
    #: its size in bytes; -1 while unknown
    object_size: int = state_column(filterable=True, kind=int)
    #: the status of the task that creates it (NIL: not known to this process)
    task_status: str = state_column(filterable=True)
    #: attempts of that task, counting the current one
    attempt_number: int = state_column(filterable=True, kind=int)
    #: ACTOR_HANDLE, PINNED_IN_MEMORY, LOCAL_REFERENCE, USED_BY_PENDING_TASK,
    #: CAPTURED_IN_OBJECT or UNKNOWN_STATUS
    reference_type: str = state_column(filterable=True)
    #: where the ref was created ("disabled" unless call sites are recorded)
    call_site: str = state_column(filterable=True)
    #: the kind of process holding the ref: DRIVER or WORKER
    type: str = state_column(filterable=True)
    #: the pid of the process holding the ref
    pid: int = state_column(filterable=True, kind=int)
    #: the IP address of that process's node
    ip: str = state_column(filterable=True)


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
            parts.append(
                f"{len(failed)} of {len(self.nodes)} nodes did not answer: {names}"
            )
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
    # each stage leaves the one above it time to report who did not answer
    req = ListObjectsRequest(timeout_s=max(timeout * 0.7, 0.05), limit=limit)

    async def one(info: NodeInfo) -> NodeObjects:
        out = NodeObjects(info)
        try:
            out.reply, out.stats = await asyncio.gather(
                call_node(info, "node.list_objects", req, timeout * 0.85),
                call_node(info, "node.get_stats", Empty(), timeout * 0.85),
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
    address: str | None = None, timeout: float = DEFAULT_RPC_TIMEOUT
) -> ObjectsSnapshot:
    """Every ref in the cluster at ``address`` (None: this process's or the recorded one)."""
    if (
        not address
        and current.worker_or_none() is None
        and runtime_access.current_or_none() is not None
    ):
        raise RayStateApiException(
            "ember runs in local mode (init(local_mode=True)): there is no cluster "
            "whose objects could be listed."
        )
    client = StateClient(address)

    async def work(links: Links) -> ObjectsSnapshot:
        async def get_nodes() -> GetNodesReply:
            got = await links.call_control("control.get_nodes", Empty(), timeout)
            assert isinstance(got, GetNodesReply)
            return got

        async def call_node(info: NodeInfo, method: str, req: Any, t: float) -> Any:
            conn = await links.connect(info.address or info.unix)
            reply, _ = await conn.call(method, req, timeout=t)
            return reply

        return await collect_from(get_nodes, call_node, timeout)

    return client.run(work, timeout)


def check_complete(snap: ObjectsSnapshot, raise_on_missing: bool) -> None:
    """Nodes or core workers that did not answer, or lists cut at the source."""
    problems = []
    warning = snap.partial_failure_warning()
    if warning:
        problems.append(warning)
    if snap.total > len(snap.rows):
        problems.append(
            f"The core workers hold {snap.total} refs; {len(snap.rows)} were reported "
            f"(each reports at most {MAX_LIMIT_FROM_DATA_SOURCE}, the largest first)."
        )
    if not problems:
        return
    if raise_on_missing:
        raise RayStateApiException(
            "Failed to retrieve all objects from the cluster. "
            + " ".join(problems)
            + " Pass raise_on_missing_output=False to accept the partial answer."
        )
    warnings.warn(" ".join(problems), UserWarning, stacklevel=4)


def reply_of(snap: ObjectsSnapshot, req: ListStateRequest) -> ListStateReply:
    """The rows of ``snap`` that match ``req``, sorted by object id (as Ray's)."""
    rows = sorted(snap.rows, key=lambda r: str(r["object_id"]))
    filters = [(f.key, f.predicate, f.value) for f in req.filters]
    selected, matched = select(rows, filters, req.limit)
    n = len(snap.rows)
    return ListStateReply(
        rows=selected, total=n, num_after_truncation=n, num_filtered=matched
    )


def _fetch(
    address: str | None, raise_on_missing: bool
) -> Callable[[ListStateRequest, float], ListStateReply]:
    def fetch(req: ListStateRequest, timeout: float) -> ListStateReply:
        snap = collect(address, timeout)
        check_complete(snap, raise_on_missing)
        return reply_of(snap, req)

    return fetch


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

    ``filters``: ``(key, "=" | "!=", value)`` over ObjectState's columns
    (strings compare case-insensitively); at most ``limit`` entries, sorted by
    object id (``_explain=True`` warns when more matched).
    """
    return list_resource(
        "objects",
        address=address,
        filters=filters,
        limit=limit,
        timeout=timeout,
        detail=detail,
        raise_on_missing_output=raise_on_missing_output,
        _explain=_explain,
        schema=ObjectState,
        fetch=_fetch(address, raise_on_missing_output),
    )


def get_objects(
    id: str,
    address: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
) -> list[ObjectState] | None:
    """Every process's entry for the object ``id`` (hex); None if nobody holds it."""
    found = get_resource(
        "objects",
        id,
        address=address,
        timeout=timeout,
        _explain=_explain,
        schema=ObjectState,
        fetch=_fetch(address, False),
    )
    return found or None


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
    check_complete(snap, raise_on_missing_output)
    if _explain and not snap.callsite_enabled:
        warnings.warn(CALL_SITE_WARNING, UserWarning, stacklevel=2)
    return {"cluster": summary_of(snap.rows)}
