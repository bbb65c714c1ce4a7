"""Why a leased worker died, asked of its node daemon, and the error the user gets.

Data flow::

    submitter: connection to a leased worker lost
        | node.get_worker_death(lease id)      the daemon answers once it has reaped
        v                                       the process (bounded wait)
    WorkerDeathReply(kind="oom" | "signal" | "exit" | "", signal, message)
        | retries left: retry, warning names the cause
        v retries spent
    OutOfMemoryError (kind "oom") | WorkerCrashedError naming the signal or exit code

The daemon is the only one that knows: the submitter sees a closed socket, the
daemon sees the exit status and knows whether its memory monitor killed it.
"""

from __future__ import annotations

from ember import exceptions as exc_mod
from ember.protocol.messages import WorkerDeathReply, WorkerDeathRequest
from ember.rpc.connection import Connection
from ember.rpc.errors import RemoteError, RpcError

#: how long the daemon may wait to reap a worker whose connection broke
DEATH_WAIT_S = 2.0


async def ask_death(node_conn: Connection, lease_id: int) -> WorkerDeathReply | None:
    """The daemon's account of how the worker of ``lease_id`` died; None if unreachable."""
    if node_conn.is_closed():
        return None
    try:
        reply, _ = await node_conn.call(
            "node.get_worker_death",
            WorkerDeathRequest(lease_id=lease_id, timeout_s=DEATH_WAIT_S),
        )
    except (RpcError, RemoteError):
        return None
    assert isinstance(reply, WorkerDeathReply)
    return reply


def retry_reason(death: WorkerDeathReply | None) -> str:
    """The "because ..." part of a retry warning."""
    if death is not None and death.kind == "oom":
        return (
            "its worker was killed by the memory monitor (the node ran out of memory)"
        )
    if death is not None and death.kind in ("signal", "exit"):
        return f"its worker died unexpectedly ({death.message})"
    return "its worker died unexpectedly"


def death_error(name: str, death: WorkerDeathReply | None) -> exc_mod.EmberError:
    """The error a task's returns get when its worker died and no retries are left."""
    if death is not None and death.kind == "oom":
        return exc_mod.OutOfMemoryError(
            f"Task {name!r} failed because the node ran out of memory and no retries "
            f"were left (max_retries).\n{death.message}"
        )
    if death is not None and death.kind == "signal":
        how = f"was killed by {death.signal} ({death.message})"
    elif death is not None and death.kind == "exit":
        how = f"exited unexpectedly ({death.message})"
    else:
        how = (
            "died unexpectedly (its process exited or was killed, e.g. by os._exit, "
            "a segfault or the OOM killer)"
        )
    return exc_mod.WorkerCrashedError(
        f"The worker running task {name!r} {how} and no retries were left (max_retries)."
    )
