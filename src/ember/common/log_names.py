"""The names of the files under ``<session>/logs`` and the groups they are listed in.

Names follow Ray's so that a user's habits (``ray logs cluster 'worker*'``)
carry over:

==================================================  ==========================
file                                                written by
==================================================  ==========================
``worker-<worker id>-<job id>-<pid>.out`` / ``.err``  a worker's stdout / stderr
``control.log``                                     the control service (Ray's
                                                    ``gcs_server.out``)
``node.log``                                        the node daemon (Ray's
                                                    ``raylet.out``)
``forkserver-<node id[:8]>.log``                    the node's fork server
``<any of these>.1`` ... ``.5``                     rotated backups
==================================================  ==========================

ember's workers are not tied to one job (a worker may serve several jobs in
turn), so the job id in a worker's file name is Ray's nil job id
``ffffffff``, as Ray names its pre-started workers. A worker's files are
created by its node daemon as ``worker-<daemon pid>-<n>.out``/``.err`` and
renamed by the worker once it knows its own id (:func:`worker_file`).
"""

from __future__ import annotations

import re
from collections import defaultdict

#: Ray's nil job id in hex: ember workers serve any job
NIL_JOB_HEX = "ffffffff"
#: worker-<worker id>-<job id>-<pid>.<out|err>, as Ray's log manager parses them
WORKER_PATTERN = re.compile(r"worker-([0-9a-f]+)-([0-9a-f]+)-(\d+)\.(out|err)$")
SUFFIXES = ("out", "err")


def worker_file(
    worker_id_hex: str, pid: int, suffix: str, job_hex: str = NIL_JOB_HEX
) -> str:
    """``worker-<worker id>-<job id>-<pid>.<suffix>``."""
    return f"worker-{worker_id_hex}-{job_hex}-{pid}.{suffix}"


def spawn_file(daemon_pid: int, n: int) -> str:
    """The stdout file a node daemon opens for its ``n``-th worker (renamed later)."""
    return f"worker-{daemon_pid}-{n}.out"


def err_path(out_path: str) -> str:
    """The stderr file beside the stdout file ``out_path`` (``.out`` -> ``.err``)."""
    base = out_path[: -len(".out")] if out_path.endswith(".out") else out_path
    return base + ".err"


def base_name(name: str) -> str:
    """``name`` without a rotation suffix (``node.log.2`` -> ``node.log``)."""
    head, dot, tail = name.rpartition(".")
    if dot and tail.isdigit() and head:
        return head
    return name


def group_of(name: str) -> str:
    """The group ``list_logs`` puts a file in (Ray's group names where they apply)."""
    base = base_name(name.rsplit("/", 1)[-1])
    if base.startswith("worker-") and base.endswith(".out"):
        return "worker_out"
    if base.startswith("worker-") and base.endswith(".err"):
        return "worker_err"
    if base.startswith("control"):
        return "control"
    if base.startswith("node"):
        return "node"
    if base.startswith("forkserver"):
        return "forkserver"
    return "internal"


def categorize(files: list[str]) -> dict[str, list[str]]:
    """``{group: [file, ...]}`` of ``files`` (Ray's ``list_logs`` answer shape)."""
    out: dict[str, list[str]] = defaultdict(list)
    for f in files:
        out[group_of(f)].append(f)
    return dict(out)


def worker_match(name: str) -> tuple[str, str, int, str] | None:
    """``(worker id hex, job id hex, pid, suffix)`` of a worker file's name, else None."""
    m = WORKER_PATTERN.search(name.rsplit("/", 1)[-1])
    if m is None:
        return None
    return m.group(1), m.group(2), int(m.group(3)), m.group(4)
