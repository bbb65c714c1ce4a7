"""A joined cluster that goes away: the driver's calls fail with a clear error, not a hang.

Theory of operation.  A driver that joined a running cluster (another driver's
embedded cluster, or ``ember start``'s) does not own it: the cluster can stop
under it, when its owner exits or ``ember stop`` runs.  :func:`watch` hooks the
driver's connection to its node daemon: when it closes while the driver is not
shutting down, :func:`_lost` (loop thread) runs once, unless the cluster
is still there (its control service answers, and it is not another driver's
embedded cluster): then only this machine's node went away, which is said
on stderr, and calls that need it fail on their own.  (The control service's
connection is not watched: it reconnects to a restarted head by itself,
``rpc/reconnecting.py``; a node daemon is never restarted, and every cluster
that stops stops its node daemons.)  It:

- tells the user on stderr what stopped (for an embedded cluster: that its
  owner, driver pid N, exited) and what to do (``ember.shutdown()``);
- replaces the installed Runtime by a :class:`LostCluster`, whose calls raise
  :class:`~ember.exceptions.EmberSystemError` with that text (``shutdown()``
  still closes the old one);
- fails every object this driver still waits for (pending tasks and actor
  calls, fetches) with that error, so a blocked ``get`` returns.

``Connection`` runs close callbacks inside ``connection_lost``, before any
coroutine sees its failed calls, so a call made after the loss always meets
the LostCluster.

The owner of an embedded cluster is not watched: its cluster ends with it.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, cast

from ember.api import runtime_access
from ember.api.runtime import Runtime
from ember.exceptions import EmberSystemError
from ember.rpc.connection import Connection
from ember.runtime.core_worker import CoreWorker

#: the knob of how long the control link waits for a restarted head
HEAD_WAIT_KNOB = "EMBER_HEAD_RECONNECT_TIMEOUT_S"

#: the calls of the Runtime protocol (a LostCluster raises on each)
_RUNTIME_NAMES = frozenset(n for n in dir(Runtime) if not n.startswith("_"))


class LostCluster:
    """The Runtime of a driver whose cluster went away: every call raises, shutdown works."""

    def __init__(self, inner: Runtime, message: str) -> None:
        self._inner = inner
        self.message = message

    def shutdown(self) -> None:
        self._inner.shutdown()

    def __getattr__(self, name: str) -> Any:
        if name in _RUNTIME_NAMES:
            raise EmberSystemError(self.message)
        raise AttributeError(name)


def lost_message(cw: CoreWorker, record: dict[str, Any] | None) -> str:
    """What the user reads when the node daemon of the joined cluster went away."""
    where = cw.control_address.removeprefix("tcp:")
    if record is not None and record.get("kind") == "embedded":
        why = (
            f"it was the local cluster of driver pid {record.get('pid')}, which has "
            "exited or shut it down"
        )
    elif cw.control.is_up():
        why = "its node daemon on this machine is gone (was it stopped?)"
    else:
        why = (
            "its node daemon on this machine is gone and its control service is "
            "unreachable: the cluster was stopped ('ember stop'), or its head did not "
            f"come back within {HEAD_WAIT_KNOB} seconds"
        )
    return (
        f"The ember cluster this driver joined at {where} has stopped: {why}. Calls "
        "from this driver raise this error from now on; call ember.shutdown(), then "
        "ember.init() to start or join another cluster."
    )


def watch(cw: CoreWorker, rt: Runtime, record: dict[str, Any] | None) -> None:
    """Install the loss handling of a driver that joined a cluster (see the module)."""

    def lost(conn: Connection) -> None:
        if cw.shutting_down:
            return
        embedded = record is not None and record.get("kind") == "embedded"
        if not embedded and cw.control.is_up():
            # Only this machine's node daemon went away; the cluster goes on (its
            # control service answers): calls that need the local node fail on
            # their own, and objects whose copies lived there are lost or rebuilt.
            with contextlib.suppress(OSError, ValueError):
                print(  # noqa: T201
                    "The node daemon on this machine has stopped; the cluster at "
                    f"{cw.control_address.removeprefix('tcp:')} goes on. Tasks and "
                    "objects of this driver that need this machine's node fail.",
                    file=sys.stderr,
                    flush=True,
                )
            return
        _lost(cw, rt, lost_message(cw, record))

    async def hook() -> None:
        cw.node_conn.on_close(lost)

    cw.run(hook())


def _lost(cw: CoreWorker, rt: Runtime, message: str) -> None:
    """Loop thread: say it once, fail what is pending, make later calls raise."""
    with contextlib.suppress(OSError, ValueError):
        print(message, file=sys.stderr, flush=True)  # noqa: T201
    # First the Runtime, so that a caller woken below cannot start a new call
    # on the old one.
    if runtime_access.current_or_none() is rt:
        runtime_access.install(cast(Runtime, LostCluster(rt, message)))
    objects = cw.objects
    for oid, entry in list(objects.entries.items()):
        if not entry.ready:
            objects.set_error(oid, EmberSystemError(message))
            entry.accessed = True  # said once above, not again per dropped ref
