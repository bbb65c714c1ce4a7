"""``list_logs`` and ``get_log`` of ``ember.util.state``, with Ray 2.60's signatures.

Each node daemon serves its own ``<session>/logs`` folder
(``node.list_logs`` / ``node.read_log``, :mod:`ember.node.log_files`); these
functions find the node (by id, by IP, or through the actor or worker a
caller names), and page through a file in chunks of up to 1 MiB. With
``follow=True`` they keep asking from the last offset every ``_interval``
seconds (0.5 by default) until the caller stops iterating. File names
follow :mod:`ember.common.log_names`.

Where Ray 2.60 and ember differ:

- ``task_id`` finds the worker that ran the task from the task events (the
  state API's ``get_task``) and returns that worker's whole file: ember
  records no per-task offsets (Ray's ``task_log_info``).
- ``submission_id``: ember has no job submission yet (ValueError).
- Errors are Ray's ``RayStateApiException`` and Python's at once:
  :class:`~ember.util.state.log_client.LogFileNotFound` (also a
  ``FileNotFoundError``) for a missing file, ``LogRequestError`` (also a
  ``ValueError``) for a bad argument or a name outside the logs folder;
  ``ServerUnavailable`` when no cluster is found.
"""

from __future__ import annotations

import codecs
import re
import time
from collections.abc import Generator
from typing import Any

from ember.common.log_names import categorize, worker_match
from ember.protocol.messages import (
    GetActorInfoRequest,
    ListLogsReply,
    ListLogsRequest,
    ReadLogReply,
    ReadLogRequest,
)
from ember.util.state.log_client import (
    ClusterLink,
    LogFileNotFound,
    LogRequestError,
    NodeEntry,
)

#: Ray's defaults (``ray.util.state.common``)
DEFAULT_RPC_TIMEOUT = 30
DEFAULT_LOG_LIMIT = 1000
DEFAULT_FOLLOW_INTERVAL_S = 0.5
CHUNK_BYTES = 1 << 20
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def list_logs(
    address: str | None = None,
    node_id: str | None = None,
    node_ip: str | None = None,
    glob_filter: str | None = None,
    timeout: int = DEFAULT_RPC_TIMEOUT,
) -> dict[str, list[str]]:
    """The log files of one node, by group: ``{"worker_out": [...], "node": [...]}``.

    Args:
        address: the cluster (``HOST:PORT``, ``auto``); None: the one this
            process is connected to, else the one recorded on this machine.
        node_id: the node's id (hex).
        node_ip: the node's IP (one of the two is required, as in Ray).
        glob_filter: names (relative to the logs folder) to list, e.g. ``"*worker*"``.
        timeout: seconds for each request.
    """
    if node_id is None and node_ip is None:
        raise AssertionError("At least one of node ip and node id is required")
    with ClusterLink(address, timeout) as link:
        node = link.find_node(node_id, node_ip)
        reply = link.node_call(
            node, "node.list_logs", ListLogsRequest(glob=glob_filter or "*")
        )
    assert isinstance(reply, ListLogsReply)
    return categorize(reply.files)


def get_log(
    address: str | None = None,
    node_id: str | None = None,
    node_ip: str | None = None,
    filename: str | None = None,
    actor_id: str | None = None,
    task_id: str | None = None,
    pid: int | None = None,
    follow: bool = False,
    tail: int = -1,
    timeout: int = DEFAULT_RPC_TIMEOUT,
    suffix: str = "out",
    encoding: str | None = "utf-8",
    errors: str | None = "strict",
    submission_id: str | None = None,
    attempt_number: int = 0,
    _interval: float | None = None,
    filter_ansi_code: bool = False,
) -> Generator[Any, None, None]:
    """Yield the content of one log file in chunks (``str``; ``bytes`` if ``encoding`` is None).

    The file is named by ``filename`` (on the node ``node_id``/``node_ip``),
    or found from ``actor_id``, ``task_id`` or ``pid`` (with a node); ``suffix``
    ("out" or "err") picks a worker's stdout or stderr. ``tail`` (-1: all)
    starts at the last N lines; ``follow`` keeps yielding what is appended.
    """
    if suffix not in ("out", "err"):
        raise LogRequestError(f"Suffix {suffix} is not supported.")
    if submission_id is not None:
        raise LogRequestError(
            "ember has no job submission: there is no log for submission id "
            f"{submission_id!r}"
        )
    interval = DEFAULT_FOLLOW_INTERVAL_S if _interval is None else float(_interval)
    with ClusterLink(address, timeout) as link:
        node, name = _resolve(
            link,
            node_id,
            node_ip,
            filename,
            actor_id,
            task_id,
            pid,
            suffix,
            attempt_number,
        )
        decoder = (
            None
            if encoding is None
            else codecs.getincrementaldecoder(encoding)(errors or "strict")
        )
        for data in _chunks(link, node, name, tail, follow, interval):
            if decoder is None:
                yield data
                continue
            text = decoder.decode(data)
            if filter_ansi_code:
                text = _ANSI.sub("", text)
            if text:
                yield text


def _chunks(
    link: ClusterLink,
    node: NodeEntry,
    name: str,
    tail: int,
    follow: bool,
    interval: float,
) -> Generator[bytes, None, None]:
    first = _read(
        link,
        node,
        ReadLogRequest(filename=name, tail_lines=tail, max_bytes=CHUNK_BYTES),
    )
    offset, size = first.end, first.size
    if first.data:
        yield first.data
    while offset < size:  # the rest of the file as it was when we started
        r = _read(
            link,
            node,
            ReadLogRequest(filename=name, offset=offset, max_bytes=CHUNK_BYTES),
        )
        if r.start != offset or not r.data:
            break  # rotated or truncated meanwhile
        offset = r.end
        yield r.data
    while follow:
        r = _read(
            link,
            node,
            ReadLogRequest(filename=name, offset=offset, max_bytes=CHUNK_BYTES),
        )
        offset = r.end
        if r.data:
            yield r.data
        if r.end >= r.size:
            time.sleep(interval)  # polling the node: nothing to wait on across machines


def _read(link: ClusterLink, node: NodeEntry, req: ReadLogRequest) -> ReadLogReply:
    reply = link.node_call(node, "node.read_log", req)
    assert isinstance(reply, ReadLogReply)
    return reply


def _resolve(
    link: ClusterLink,
    node_id: str | None,
    node_ip: str | None,
    filename: str | None,
    actor_id: str | None,
    task_id: str | None,
    pid: int | None,
    suffix: str,
    attempt_number: int,
) -> tuple[NodeEntry, str]:
    """The node and the file name a get_log call means."""
    if actor_id:
        return _actor_file(link, actor_id, suffix)
    if task_id:
        return _task_file(link, task_id, attempt_number, suffix)
    if node_id is None and node_ip is None:
        raise LogRequestError(
            "node_id or node_ip is required to find a log by filename or pid"
        )
    node = link.find_node(node_id, node_ip)
    if filename:
        return node, filename
    if pid is not None:
        found = _worker_file(link, node, None, int(pid), suffix)
        if found is None:
            raise LogFileNotFound(
                f"no worker log with pid {pid} and suffix {suffix!r} on node "
                f"{node.node_id.hex()}"
            )
        return node, found
    raise LogRequestError("get_log() needs one of filename, actor_id, task_id or pid")


def _worker_file(
    link: ClusterLink,
    node: NodeEntry,
    worker_id_hex: str | None,
    pid: int | None,
    suffix: str,
) -> str | None:
    glob = f"*{worker_id_hex}*{suffix}" if worker_id_hex else f"*{pid}*{suffix}"
    reply = link.node_call(node, "node.list_logs", ListLogsRequest(glob=glob))
    assert isinstance(reply, ListLogsReply)
    for f in reply.files:
        m = worker_match(f)
        if m is None or m[3] != suffix:
            continue
        if (worker_id_hex and m[0] == worker_id_hex) or (
            pid is not None and m[2] == pid
        ):
            return f
    return None


def _actor_file(link: ClusterLink, actor_id: str, suffix: str) -> tuple[NodeEntry, str]:
    try:
        aid = bytes.fromhex(actor_id)
    except ValueError:
        raise LogRequestError(f"{actor_id!r} is not an actor id (hex)") from None
    info = link.control_call(
        "control.get_actor_info", GetActorInfoRequest(actor_id=aid)
    )
    if info.death_cause == "the actor is unknown to the control service":
        raise LogRequestError(f"Actor ID {actor_id} not found.")
    addr = info.address
    if addr is not None and addr.worker_id and addr.node_id:
        node = link.node_by_id(addr.node_id)
        found = _worker_file(link, node, addr.worker_id.hex(), None, suffix)
        if found is not None:
            return node, found
    if info.pid:
        for node in link.alive_nodes():
            found = _worker_file(link, node, None, info.pid, suffix)
            if found is not None:
                return node, found
    if addr is None and not info.pid:
        raise LogRequestError(
            f"Worker ID for Actor ID {actor_id} not found. Actor is not scheduled yet."
        )
    raise LogFileNotFound(f"no {suffix} log file found for actor {actor_id}")


def _task_file(
    link: ClusterLink, task_id: str, attempt_number: int, suffix: str
) -> tuple[NodeEntry, str]:
    worker_id_hex, node_id_hex = link.task_worker(task_id, attempt_number)
    node = link.node_by_id(bytes.fromhex(node_id_hex))
    found = _worker_file(link, node, worker_id_hex, None, suffix)
    if found is None:
        raise LogFileNotFound(
            f"Could not find log file for task: {task_id} (attempt {attempt_number}) "
            f"with suffix: {suffix}"
        )
    return node, found
