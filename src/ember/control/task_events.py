"""The control service's table of task attempts, built from core workers' task events.

Theory of operation.  Core workers send ``control.add_task_events`` batches
(``runtime/task_events.py``).  Events are merged per ``(task id, attempt)``:
the submitter's events carry what the task is (name, type, job, actor,
parent, resources), the executor's carry where it ran (its worker, node and
pid, from the batch) and what it raised.  Each attempt keeps the first time
it was seen in each state (the executor's time wins for RUNNING and the
end, as it ran them); its state is the latest in Ray's order
(:data:`ORDER`), so events may arrive in any order from any process.

A batch holds most of its events as columns of tuples (``submits``: what a
task is; ``states``/``exec_states``: a state reached at a time, by the
submitter or the executor) and the rare events that carry an error or an
actor spec as ``TaskEvent`` messages; all four merge into the same attempts.

Batches arrive as :class:`TaskEventsBatchWire` (the events still encoded)
and wait, undecoded, until the table is read (a ``list_tasks``, a metrics
scrape, the dashboard) or 32 MiB of them wait: a cluster nobody watches pays
only the receive; one that is watched pays the decode and merge off the
control path's burst, at the next read.

The table keeps the last ``EMBER_TASK_EVENTS_MAX`` (100,000) attempts; older
ones are dropped, oldest first, and counted with what the workers dropped
themselves (``dropped``).  It answers the state API's ``list_tasks``
(:meth:`TaskEventTable.rows`, with filters and a limit applied here) and the
metrics' ``ember_tasks`` gauge (:meth:`TaskEventTable.state_counts`).
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import msgspec

from ember.common.state_filters import Filter, select
from ember.protocol.messages import (
    ListStateReply,
    StateRow,
    SubmitRow,
    TaskEvent,
    TaskEventsBatch,
    TaskEventsBatchWire,
)

logger = logging.getLogger(__name__)

#: encoded events kept waiting before they are merged without being asked
PENDING_MAX_BYTES = 32 * 2**20
_EVENTS_DECODER = msgspec.msgpack.Decoder(list[TaskEvent])
_SUBMITS_DECODER = msgspec.msgpack.Decoder(list[SubmitRow])
_STATES_DECODER = msgspec.msgpack.Decoder(list[StateRow])
_EMPTY = msgspec.Raw()

#: Ray's TaskStatus order: an attempt's state is the last of these it reached
ORDER = (
    "NIL",
    "PENDING_ARGS_AVAIL",
    "PENDING_NODE_ASSIGNMENT",
    "PENDING_OBJ_STORE_MEM_AVAIL",
    "PENDING_ARGS_FETCH",
    "SUBMITTED_TO_WORKER",
    "PENDING_ACTOR_TASK_ARGS_FETCH",
    "PENDING_ACTOR_TASK_ORDERING_OR_CONCURRENCY",
    "RUNNING",
    "RUNNING_IN_RAY_GET",
    "RUNNING_IN_RAY_WAIT",
    "FINISHED",
    "FAILED",
)
_RANK = {name: i for i, name in enumerate(ORDER)}
#: states whose time the executing worker knows best
_EXECUTOR_STATES = frozenset(("RUNNING", "FINISHED", "FAILED"))

DEFAULT_MAX = 100_000


def max_from_env() -> int:
    """``EMBER_TASK_EVENTS_MAX``: how many task attempts the table keeps."""
    try:
        return max(1, int(os.environ.get("EMBER_TASK_EVENTS_MAX", DEFAULT_MAX)))
    except ValueError:
        return DEFAULT_MAX


def _hex(b: bytes) -> str:
    return b.hex()


def _ms(t: float | None) -> int | None:
    return None if t is None else int(t * 1000)


class TaskAttempt:
    """What is known of one attempt of one task."""

    __slots__ = (
        "actor_id",
        "attempt",
        "error_message",
        "error_type",
        "func_name",
        "job_id",
        "name",
        "node_id",
        "parent_task_id",
        "pg_id",
        "resources",
        "state",
        "task_id",
        "times",
        "type",
        "worker_id",
        "worker_pid",
    )

    def __init__(self, task_id: bytes, attempt: int) -> None:
        self.task_id = task_id
        self.attempt = attempt
        self.name = ""
        self.func_name = ""
        self.type = "NORMAL_TASK"
        self.job_id = b""
        self.actor_id = b""
        self.parent_task_id = b""
        self.resources: dict[str, float] = {}
        self.pg_id = b""
        self.node_id = b""
        self.worker_id = b""
        self.worker_pid = 0
        self.error_type = ""
        self.error_message = ""
        self.state = "NIL"
        #: state -> unix time (s) it was first reached
        self.times: dict[str, float] = {}

    def copy_static(self, other: TaskAttempt) -> None:
        """Take what the task is from another attempt of it (a retry's events are short)."""
        self.name, self.func_name, self.type = other.name, other.func_name, other.type
        self.job_id, self.actor_id = other.job_id, other.actor_id
        self.parent_task_id, self.resources = other.parent_task_id, other.resources
        self.pg_id = other.pg_id

    def apply(
        self, ev: TaskEvent, batch: TaskEventsBatch | TaskEventsBatchWire
    ) -> None:
        """Merge one event (from the worker that sent ``batch``)."""
        if ev.name:
            self.name, self.func_name = ev.name, ev.func_name or ev.name
            self.type = ev.type or self.type
            self.job_id = ev.job_id or self.job_id
            self.actor_id = ev.actor_id or self.actor_id
            self.parent_task_id = ev.parent_task_id or self.parent_task_id
            self.resources = ev.resources or self.resources
            self.pg_id = ev.pg_id or self.pg_id
        state = ev.state
        if state not in _RANK:
            return
        if ev.executed:
            self.ran(batch)
        self._reach(state, ev.time_s, ev.executed)
        if ev.error_type and (ev.executed or not self.error_type):
            self.error_type = ev.error_type
        if ev.error_message and (ev.executed or not self.error_message):
            self.error_message = ev.error_message

    def submitted(self, row: SubmitRow) -> None:
        """Merge a ``submits`` row: what the task is, and when it was submitted."""
        _, _, t, name, job_id, actor_id, parent, resources, pg_id = row
        self.name = self.func_name = name
        self.type = "ACTOR_TASK" if actor_id else "NORMAL_TASK"
        self.job_id = job_id or self.job_id
        self.actor_id = actor_id
        self.parent_task_id = parent or self.parent_task_id
        self.resources = resources or self.resources
        self.pg_id = pg_id or self.pg_id
        self._reach("PENDING_ARGS_AVAIL", t, False)

    def ran(self, batch: TaskEventsBatch | TaskEventsBatchWire) -> None:
        """The worker that sent ``batch`` runs this attempt."""
        self.node_id, self.worker_id = batch.node_id, batch.worker_id
        self.worker_pid = batch.pid
        if not self.job_id:
            self.job_id = batch.job_id

    def _reach(self, state: str, t: float, executed: bool) -> None:
        if (executed and state in _EXECUTOR_STATES) or state not in self.times:
            self.times[state] = t
        if _RANK[state] > _RANK[self.state]:
            self.state = state

    @property
    def end_s(self) -> float | None:
        return self.times.get("FAILED", self.times.get("FINISHED"))

    def row(self) -> dict[str, Any]:
        """Every column of Ray's ``TaskState`` (the client keeps the ones asked for)."""
        times = self.times
        events = [
            {"state": s, "created_ms": _ms(times[s])}
            for s in sorted(times, key=_RANK.__getitem__)
        ]
        failed = self.state == "FAILED"
        return {
            "task_id": _hex(self.task_id),
            "attempt_number": self.attempt,
            "name": self.name,
            "state": self.state,
            "job_id": _hex(self.job_id),
            "actor_id": _hex(self.actor_id) if self.actor_id else None,
            "type": self.type,
            "func_or_class_name": self.func_name or self.name,
            "parent_task_id": _hex(self.parent_task_id),
            "node_id": _hex(self.node_id) if self.node_id else None,
            "worker_id": _hex(self.worker_id) if self.worker_id else None,
            "worker_pid": self.worker_pid or None,
            "error_type": (self.error_type or None) if failed else None,
            "language": "PYTHON",
            "required_resources": dict(self.resources),
            "runtime_env_info": {"serialized_runtime_env": "{}"},
            "placement_group_id": _hex(self.pg_id) if self.pg_id else None,
            "events": events,
            "profiling_data": {},
            "creation_time_ms": _ms(times.get("PENDING_ARGS_AVAIL")),
            "start_time_ms": _ms(times.get("RUNNING")),
            "end_time_ms": _ms(self.end_s),
            "task_log_info": None,
            "error_message": (self.error_message or None) if failed else None,
            "is_debugger_paused": None,
            "call_site": None,
            "label_selector": {},
            "fallback_strategy": None,
        }


class TaskEventTable:
    """The last ``max_attempts`` task attempts of the cluster, from task events."""

    def __init__(self, max_attempts: int | None = None) -> None:
        self.max_attempts = max_attempts if max_attempts else max_from_env()
        #: (task id, attempt) -> attempt, oldest first
        self.attempts: dict[tuple[bytes, int], TaskAttempt] = {}
        #: task id -> its latest attempt kept
        self._latest: dict[bytes, TaskAttempt] = {}
        #: attempts this table dropped for room
        self.evicted = 0
        #: events the workers dropped (their latest count, per worker)
        self._worker_dropped: dict[bytes, int] = {}
        #: batches off the wire whose events are not decoded yet, oldest first
        self._pending: list[tuple[TaskEventsBatchWire, tuple[bytes, ...]]] = []
        self._pending_bytes = 0

    @property
    def dropped(self) -> int:
        """Attempts dropped here plus events dropped by the workers' buffers."""
        self._merge_pending()
        return self.evicted + sum(self._worker_dropped.values())

    def add(self, batch: TaskEventsBatch | TaskEventsBatchWire) -> None:
        """Take a core worker's batch of events.

        A batch off the wire keeps its events encoded: they are decoded and
        merged when the table is next read (:meth:`_merge_pending`), or once
        ``PENDING_MAX_BYTES`` of them wait, so a cluster nobody is watching
        spends almost nothing on them.
        """
        if batch.dropped:
            self._worker_dropped[batch.worker_id] = batch.dropped
        if isinstance(batch, TaskEventsBatchWire):
            raws = (batch.submits, batch.events, batch.states, batch.exec_states)
            if any(len(r) > 1 for r in raws):  # b"\x90" is an empty list
                size = sum(len(r) for r in raws)
                # keep copies, not the receive buffer the Raw views point into
                parts = tuple(bytes(r) for r in raws)
                batch.submits = batch.events = _EMPTY
                batch.states = batch.exec_states = _EMPTY
                self._pending.append((batch, parts))
                self._pending_bytes += size
                if self._pending_bytes > PENDING_MAX_BYTES:
                    self._merge_pending()
            return
        self._merge(batch, batch.submits, batch.events, batch.states, batch.exec_states)

    def _merge_pending(self) -> None:
        """Decode and merge the batches that wait, in the order they came."""
        pending, self._pending = self._pending, []
        self._pending_bytes = 0
        for batch, (submits, events, states, exec_states) in pending:
            try:
                self._merge(
                    batch,
                    _SUBMITS_DECODER.decode(submits) if len(submits) > 1 else [],
                    _EVENTS_DECODER.decode(events) if len(events) > 1 else [],
                    _STATES_DECODER.decode(states) if len(states) > 1 else [],
                    _STATES_DECODER.decode(exec_states) if len(exec_states) > 1 else [],
                )
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                logger.warning(
                    "dropped task events from worker %s: %s", batch.worker_id.hex(), exc
                )

    def _merge(
        self,
        batch: TaskEventsBatch | TaskEventsBatchWire,
        submits: list[SubmitRow],
        events: list[TaskEvent],
        states: list[StateRow],
        exec_states: list[StateRow],
    ) -> None:
        # what a task is first, so that a retry's attempt can copy it
        attempt = self._attempt
        for row in submits:
            attempt(row[0], row[1]).submitted(row)
        for ev in events:
            attempt(ev.task_id, ev.attempt).apply(ev, batch)
        for task_id, n, state, t in states:
            if state in _RANK:
                attempt(task_id, n)._reach(state, t, False)
        for task_id, n, state, t in exec_states:
            if state in _RANK:
                rec = attempt(task_id, n)
                rec.ran(batch)
                rec._reach(state, t, True)

    def _attempt(self, task_id: bytes, attempt: int) -> TaskAttempt:
        """The record of one attempt (made, after its earlier attempts, if new)."""
        attempts = self.attempts
        key = (task_id, attempt)
        rec = attempts.get(key)
        if rec is None:
            rec = attempts[key] = TaskAttempt(task_id, attempt)
            earlier = self._latest.get(task_id)
            if earlier is not None:
                rec.copy_static(earlier)
            if earlier is None or earlier.attempt < attempt:
                self._latest[task_id] = rec
            if len(attempts) > self.max_attempts:
                self._evict()
        return rec

    def _evict(self) -> None:
        key = next(iter(self.attempts))
        rec = self.attempts.pop(key)
        if self._latest.get(rec.task_id) is rec:
            del self._latest[rec.task_id]
        self.evicted += 1

    def __iter__(self) -> Iterator[TaskAttempt]:
        self._merge_pending()
        return iter(self.attempts.values())

    def rows(self, filters: Sequence[Filter], limit: int) -> ListStateReply:
        """``list_tasks``: matching rows (up to ``limit``) and the counts Ray reports."""
        rows, matched = select((a.row() for a in self), filters, limit, "task_id")
        kept = len(self.attempts)  # (iterating merged what was pending)
        return ListStateReply(
            rows=rows,
            total=kept + self.dropped,
            num_after_truncation=kept,
            num_filtered=matched,
        )

    def state_counts(self) -> dict[tuple[str, str, bool], int]:
        """``{(state, name, is_retry): count}`` over the attempts kept (``ember_tasks``)."""
        counts: Counter[tuple[str, str, bool]] = Counter()
        for a in self:
            counts[(a.state, a.name, a.attempt > 0)] += 1
        return dict(counts)
