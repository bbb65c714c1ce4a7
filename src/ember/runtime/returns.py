"""Where a submitted task's outcome goes: its returns into the memory store.

Shared by the task and the actor submitter.  On a reply, each returned object
fills its pending entry (inline or stored), refs inside returned values are
adopted (the escrow protocol, ``borrowing.py``), a stream ends; on failure,
every return (and a stream's next item) holds the error.  Either way the
task's arguments stop counting as submitted.
"""

from __future__ import annotations

import time
from typing import Any

from ember.protocol.messages import TaskReply, TaskSpec
from ember.rpc.connection import Connection
from ember.runtime import task_events
from ember.runtime.borrowing import Borrowing
from ember.runtime.generators import Generators
from ember.runtime.objects import Objects

_record = task_events.record
_record_state = task_events.record_state
_now = time.time
_FAILED = task_events.FAILED
_FINISHED = task_events.FINISHED
_RAISED = ("TASK_EXECUTION_EXCEPTION", "")


class Returns:
    """Stores the outcome of the tasks and actor calls we submitted (loop thread)."""

    def __init__(
        self, objects: Objects, borrowing: Borrowing, generators: Generators
    ) -> None:
        self._objects = objects
        self._borrowing = borrowing
        self._refs = borrowing.refs
        self._generators = generators

    def done(
        self,
        spec: TaskSpec,
        reply: TaskReply,
        frames: list[Any],
        conn: Connection | None,
        arg_oids: list[bytes],
    ) -> None:
        """The task replied: store its returns."""
        pos = 0
        borrowing = self._borrowing
        mark = borrowing.acks_sent()
        had_contained = False
        raised = False
        set_return = self._objects.set_return
        for obj in reply.returns:
            pos = set_return(obj, frames, pos)
            raised = raised or obj.is_error
            if obj.contained:
                had_contained = True
                borrowing.adopt_contained(obj)
        if raised:  # the executor's event says what it raised
            _record((_FAILED, spec.task_id, spec.attempt, _now(), _RAISED))
        else:
            _record_state((spec.task_id, spec.attempt, _FINISHED, _now()))
        if spec.streaming:
            self._generators.finished(spec.task_id)
        if had_contained and conn is not None:
            borrowing.release_escrow_after(mark, conn, spec.task_id)
        self._refs.remove_submitted(arg_oids)

    def failed(
        self,
        spec: TaskSpec,
        return_oids: list[bytes],
        arg_oids: list[bytes],
        error: BaseException,
    ) -> None:
        """The task failed for good: every return holds ``error``."""
        _record((_FAILED, spec.task_id, spec.attempt, _now(), error))
        for oid in return_oids:
            self._objects.set_error(oid, error)
        if spec.streaming:
            self._generators.failed(spec.task_id, error)
        self._refs.remove_submitted(arg_oids)
