"""Task events of this process: state changes recorded on the hot path, sent in batches.

Theory of operation.  Every core worker records the state changes of the
tasks and actor calls it submits (owner side: pending, queued for a lease,
pushed, finished or failed) and of those it runs (executor side: running,
finished, failed, with its own worker id, node id and pid).  Recording is
one call, ``list.append`` of a tuple made at the call site, into one of four
lists by kind: no encoding, no lock, no I/O on the hot path (measured well
under 1 us per event; ``tests/unit/test_task_events.py``)::

    record_submit((spec, attempt, time_s, parent_task_id))   owner, a new attempt
    record_state((task_id, attempt, state, time_s))          owner, a later state
    record_exec((task_id, attempt, state, time_s))           executor, no error
    record((FAILED, task_id, attempt, time_s, error))        owner, error: exception
    record((EXEC, task_id, attempt, state, time_s, error))   executor, with an error
    record((CREATE, actor_spec, time_s, state, error))       executor, actor creation

:class:`TaskEventSender`, on the core worker's loop, takes what was recorded
every ``EMBER_TASK_EVENTS_INTERVAL_S`` (1 s) and at shutdown and notifies the
control service (``control.add_task_events``).  The common kinds travel as
columns of plain tuples (``TaskEventsBatch.submits/states/exec_states``),
which msgspec encodes in C: a state change costs its sender no Python work
beyond the append.  Only the rare kinds with an error or an actor spec
become ``TaskEvent`` messages (:func:`encode_all`).  Each list is drained in
place (``buf[:n]`` then ``del buf[:n]``, each atomic under the GIL), so
appends from any thread racing a flush are kept for the next one.  More
than ``EMBER_TASK_EVENTS_BUFFER`` events of one kind between two flushes:
the oldest are dropped and counted (the batch says how many).

``EMBER_TASK_EVENTS=0`` makes :func:`record` a no-op (for the cost benchmark).
"""

from __future__ import annotations

import asyncio
import logging
import os
import traceback
from typing import TYPE_CHECKING, Any

from ember.common.aio import Supervisor
from ember.protocol.messages import SubmitRow, TaskEvent, TaskEventsBatch
from ember.rpc.errors import RpcError

if TYPE_CHECKING:
    from ember.runtime.links import Links

logger = logging.getLogger(__name__)

ENABLED = os.environ.get("EMBER_TASK_EVENTS", "1") != "0"
INTERVAL_S = float(os.environ.get("EMBER_TASK_EVENTS_INTERVAL_S", "1.0"))
BUFFER_MAX = int(os.environ.get("EMBER_TASK_EVENTS_BUFFER", "100000"))

#: the kinds of the rare events in :data:`EVENTS` (their tuple's first item)
FAILED, EXEC, CREATE = range(3)

# Ray's task state names (TaskStatus), in their order
PENDING_ARGS_AVAIL = "PENDING_ARGS_AVAIL"
PENDING_NODE_ASSIGNMENT = "PENDING_NODE_ASSIGNMENT"
SUBMITTED_TO_WORKER = "SUBMITTED_TO_WORKER"
RUNNING = "RUNNING"
FINISHED = "FINISHED"
FAILED_STATE = "FAILED"

#: the buffers of this process (one core worker per process): the rare kinds
EVENTS: list[tuple[Any, ...]] = []
#: ``(spec, attempt, time_s, parent_task_id)`` of each task and call submitted
SUBMITS: list[tuple[Any, ...]] = []
#: ``(task_id, attempt, state, time_s)``: plain state changes the submitter saw
STATES: list[tuple[bytes, int, str, float]] = []
#: ``(task_id, attempt, state, time_s)``: plain state changes of what this process ran
EXECS: list[tuple[bytes, int, str, float]] = []


def _off(event: tuple[Any, ...]) -> None:
    """Recording is off (``EMBER_TASK_EVENTS=0``)."""


#: the hot-path calls, one C call each
record = EVENTS.append if ENABLED else _off
record_submit = SUBMITS.append if ENABLED else _off
record_state = STATES.append if ENABLED else _off
record_exec = EXECS.append if ENABLED else _off
_BUFFERS: tuple[list[Any], ...] = (EVENTS, SUBMITS, STATES, EXECS)

#: Ray's error type names, by the class name of the error a task failed with
_ERROR_TYPES = {
    "WorkerCrashedError": "WORKER_DIED",
    "ActorDiedError": "ACTOR_DIED",
    "ActorUnavailableError": "ACTOR_UNAVAILABLE",
    "ActorUnschedulableError": "ACTOR_UNSCHEDULABLE_ERROR",
    "TaskCancelledError": "TASK_CANCELLED",
    "OutOfMemoryError": "OUT_OF_MEMORY",
    "TaskUnschedulableError": "TASK_UNSCHEDULABLE_ERROR",
    "TaskPlacementGroupRemoved": "TASK_PLACEMENT_GROUP_REMOVED",
    "ActorPlacementGroupRemoved": "ACTOR_PLACEMENT_GROUP_REMOVED",
    "LocalNodeDiedError": "LOCAL_RAYLET_DIED",
    "RuntimeEnvSetupError": "RUNTIME_ENV_SETUP_FAILED",
    "ObjectLostError": "OBJECT_LOST",
    "OwnerDiedError": "OWNER_DIED",
    "NodeDiedError": "NODE_DIED",
    "EmberSystemError": "WORKER_DIED",
    "KeyboardInterrupt": "TASK_CANCELLED",
    "CancelledError": "TASK_CANCELLED",
}


def error_type(error: Any) -> str:
    """Ray's ``error_type`` for a failure: an exception, or ``(type, message)``."""
    if isinstance(error, tuple):
        return str(error[0])
    for cls in type(error).__mro__:  # what the task raised itself is its own error
        name = _ERROR_TYPES.get(cls.__name__)
        if name is not None:
            return name
    return "TASK_EXECUTION_EXCEPTION"


def error_message(error: Any) -> str:
    """The text Ray shows as ``error_message`` (the traceback of a user error)."""
    if error is None:
        return ""
    if isinstance(error, tuple):
        return str(error[1])
    if getattr(error, "__traceback__", None) is not None:
        return "".join(traceback.format_exception(error)).rstrip()
    return str(error) or type(error).__name__


def _pg_id(strategy: dict[str, Any]) -> bytes:
    if strategy.get("type") == "placement_group" and strategy.get("pg_id"):
        try:
            return bytes.fromhex(strategy["pg_id"])
        except ValueError:
            return b""
    return b""


def encode(ev: tuple[Any, ...]) -> TaskEvent:
    """One recorded rare event as the message the control service keeps (off the
    hot path)."""
    kind = ev[0]
    if kind == FAILED:
        _, task_id, attempt, t, error = ev
        return TaskEvent(
            task_id=task_id,
            attempt=attempt,
            state=FAILED_STATE,
            time_s=t,
            error_type=error_type(error),
            error_message=error_message(error),
        )
    if kind == EXEC:
        _, task_id, attempt, state, t, error = ev
        return TaskEvent(
            task_id=task_id,
            attempt=attempt,
            state=state,
            time_s=t,
            error_type=error_type(error) if error is not None else "",
            error_message=error_message(error),
            executed=True,
        )
    _, spec, t, state, error = ev  # CREATE
    func_name = f"{spec.class_name}.__init__"
    return TaskEvent(
        task_id=creation_task_id(spec.actor_id),
        attempt=0,
        state=state,
        time_s=t,
        name=f"{spec.name}:{func_name}" if spec.name else func_name,  # as Ray names it
        func_name=func_name,
        type="ACTOR_CREATION_TASK",
        job_id=spec.job_id,
        actor_id=spec.actor_id,
        parent_task_id=driver_task_id(spec.job_id),
        resources=dict(spec.resources),
        pg_id=_pg_id(spec.scheduling),
        error_type=error_type(error) if error is not None else "",
        error_message=error_message(error),
        executed=True,
    )


def encode_all(recorded: list[tuple[Any, ...]]) -> list[TaskEvent]:
    """The messages of the rare events ``recorded`` (one that cannot be encoded is
    logged and skipped: never the rest)."""
    out: list[TaskEvent] = []
    for ev in recorded:
        try:
            out.append(encode(ev))
        except (AttributeError, TypeError, ValueError):
            logger.debug("cannot encode task event %r", ev[:2], exc_info=True)
    return out


def submit_rows(recorded: list[tuple[Any, ...]]) -> list[SubmitRow]:
    """The ``submits`` column of a batch: what each submitted task is, as a tuple."""
    rows: list[SubmitRow] = []
    for spec, attempt, t, parent in recorded:
        try:
            rows.append(
                (
                    spec.task_id,
                    attempt,
                    t,
                    spec.name,
                    spec.job_id,
                    spec.actor_id,
                    parent or driver_task_id(spec.job_id),
                    spec.resources,
                    _pg_id(spec.strategy) if spec.strategy else b"",
                )
            )
        except (AttributeError, TypeError, ValueError):  # never lose the rest
            logger.debug("cannot encode a submitted task %r", spec, exc_info=True)
    return rows


def driver_task_id(job_id: bytes) -> bytes:
    """The id the state API gives a job's driver, the parent of the tasks it submits
    (as Ray's: all ``ff`` but the job id at the end)."""
    return b"\xff" * (16 - len(job_id)) + job_id


def creation_task_id(actor_id: bytes) -> bytes:
    """The id the state API gives an actor's creation task (derived from the actor's)."""
    return b"\xff" * 4 + actor_id[:12]


class TaskEventSender:
    """Sends this process's recorded events to the control service in batches."""

    def __init__(
        self, links: Links, *, is_driver: bool, node_ip: str, sup: Supervisor
    ) -> None:
        self._links = links
        self._is_driver = is_driver
        self._node_ip = node_ip
        self._sup = sup
        self._task: asyncio.Task[Any] | None = None
        self.dropped = 0
        self.sent = 0

    def start(self) -> None:
        """Loop thread: forget events of an earlier core worker; send every interval."""
        for buf in _BUFFERS:
            del buf[:]
        if ENABLED:
            self.flush()  # introduces this worker (``list_workers``) at once
            self._task = self._sup.spawn(self._run(), name="task-events")

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(INTERVAL_S)
            self.flush()

    def take(self, buf: list[Any] = EVENTS) -> list[Any]:
        """What was recorded in ``buf`` since the last take (the oldest dropped
        beyond the cap)."""
        n = len(buf)
        batch = buf[:n]
        del buf[:n]
        if n > BUFFER_MAX:
            self.dropped += n - BUFFER_MAX
            batch = batch[n - BUFFER_MAX :]
        return batch

    def batch(self) -> TaskEventsBatch:
        """The next batch to send (drains the buffers)."""
        links = self._links
        return TaskEventsBatch(
            worker_id=links.worker_id,
            node_id=links.node_id,
            pid=os.getpid(),
            ip=self._node_ip,
            worker_type="DRIVER" if self._is_driver else "WORKER",
            job_id=links.job_id,
            submits=submit_rows(self.take(SUBMITS)),
            states=self.take(STATES),
            exec_states=self.take(EXECS),
            events=encode_all(self.take(EVENTS)),
            dropped=self.dropped,
        )

    def _empty(self) -> bool:
        return not (EVENTS or SUBMITS or STATES or EXECS)

    def flush(self) -> None:
        """Loop thread: send what was recorded (a notify; lost if the link is down)."""
        control = self._links.control
        if control is None or control.is_closed():
            for buf in _BUFFERS:  # nobody to tell: keep the buffers bounded
                self.take(buf)
            return
        if self._empty() and self.sent:
            return
        msg = self.batch()
        try:
            control.notify("control.add_task_events", msg, queue_if_down=False)
            self.sent += 1
        except RpcError:
            pass

    def close(self) -> None:
        """Loop thread, at shutdown: send the last events and stop."""
        if self._task is not None:
            self._task.cancel()
            self._task = None
        if ENABLED:
            self.flush()
