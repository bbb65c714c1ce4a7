"""The worker's ``worker.*`` execution handlers and its main thread's loop.

Data flow::

    loop thread: worker.push_task ---> main_q (normal tasks, sync actors)
                                  \\--> thread pool (threaded actors)
                                   \\-> actor event loop (async actors)
    executing thread: CallRunner.run / run_async (worker/calls.py)
                      -> reply from this thread (or resolve the reply future)
    loop thread: worker.cancel_task -> TaskInterrupts.cancel (worker/interrupts.py)
                 (an actor's call: CallCancels.cancel, worker/call_cancels.py)

Task code never runs on the loop thread, so a long task does not stall
heartbeats, cancellation or incoming calls.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import signal
import sys
import time
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.protocol.messages import (
    Address,
    CreateActorOnWorkerReply,
    Empty,
    TaskReply,
    TaskSpec,
)
from ember.rpc.connection import REPLY_LATER, Connection
from ember.runtime.serialization import error_bytes
from ember.runtime.task_events import CREATE, FAILED_STATE, FINISHED, RUNNING, record
from ember.worker.actor_host import ActorHost, create_actor
from ember.worker.calls import EXITED, CallRunner, resolve_future
from ember.worker.functions import FunctionTable
from ember.worker.interrupts import TaskInterrupts
from ember.worker.setup_hook import SetupHook

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker

logger = logging.getLogger(__name__)


class Executor:
    """Executes what this worker is asked to run."""

    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self.main_q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.table = FunctionTable(cw)
        self.interrupts = TaskInterrupts()
        self.runner = CallRunner(
            cw, self.table, self.interrupts, stop_main=lambda: self.main_q.put(None)
        )
        self.actor: ActorHost | None = None
        self.setup_hook = SetupHook(self.table)
        cw.handlers.update(
            {
                "worker.push_task": self.h_push_task,
                "worker.create_actor": self.h_create_actor,
                "worker.cancel_task": self.h_cancel_task,
                "worker.exit": self.h_exit,
            }
        )

    @property
    def exit_code(self) -> int | None:
        """Set once the actor called ``exit_actor()``: the process exits with it."""
        return self.runner.exit_code

    @property
    def job_drivers(self) -> dict[bytes, Address]:
        """The driver of each job seen, where task output is streamed."""
        return self.table.job_drivers

    # -- loop-thread handlers -------------------------------------------------------------
    def h_push_task(self, conn: Connection, spec: TaskSpec, bufs: list[Any]) -> Any:
        """Queue the task.

        The executing thread writes the reply itself (``reply_from_thread``, no
        hop back through the loop) when it can; streaming tasks, whose items go
        through the loop, answer by resolving a future instead.
        """
        if spec.actor_id:
            if self.actor is None:
                return TaskReply(
                    error="this worker hosts no actor (it may have been restarted)"
                )
            if spec.concurrency_group and (why := self.actor.unknown_group(spec)):
                return TaskReply(error=why)
            if self.exit_code is not None:
                return TaskReply(error=EXITED)
        direct = not spec.streaming and conn.enable_thread_writes()
        reply: Any = (
            conn.current_req_id
            if direct
            else asyncio.get_running_loop().create_future()
        )
        item = (spec, bufs, reply, conn)
        if spec.actor_id:
            self.actor.dispatch(item)  # type: ignore[union-attr]
        else:
            self.interrupts.queued(spec.task_id)
            self.main_q.put(item)
        return REPLY_LATER if direct else reply

    async def h_create_actor(
        self, conn: Connection, req: Any, bufs: Any
    ) -> CreateActorOnWorkerReply:
        fut: asyncio.Future[CreateActorOnWorkerReply] = (
            asyncio.get_running_loop().create_future()
        )
        if req.gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in req.gpu_ids)

        def create() -> None:  # main thread
            self.runner.adopt_job(req.spec.job_id)  # an actor serves one job
            failed = self.setup_hook.ensure(req.spec.job_id)
            if failed is not None:
                err = exc_mod.RuntimeEnvSetupError(failed)
                self.cw.loop_thread.call(
                    resolve_future,
                    fut,
                    CreateActorOnWorkerReply(
                        ok=False, error=error_bytes(err), error_text=str(err)
                    ),
                )
                self.main_q.put(None)  # this worker is not set up: it exits
                return
            host = ActorHost(self.runner, req.spec, self.main_q.put)
            record((CREATE, req.spec, time.time(), RUNNING, None))
            reply = create_actor(self.runner, req.spec, req.epoch, host.aloop)
            failure = (
                None if reply.ok else ("TASK_EXECUTION_EXCEPTION", reply.error_text)
            )
            record(
                (
                    CREATE,
                    req.spec,
                    time.time(),
                    FINISHED if reply.ok else FAILED_STATE,
                    failure,
                )
            )
            if reply.ok:
                self.actor = host
            else:
                host.close()
            self.cw.loop_thread.call(resolve_future, fut, reply)

        self.main_q.put(create)
        return await fut

    def h_cancel_task(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        if self.actor is not None:  # an actor call: worker/call_cancels.py
            self.runner.cancels.cancel(req.task_id)
        else:
            self.interrupts.cancel(req.task_id, req.force)
        return Empty()

    def h_exit(self, conn: Connection, req: Any, bufs: Any) -> None:
        if req.force:
            _flush_std()
            self.cw.task_events.close()  # what it ran is still reported
            os._exit(1)
        if req.reason == "idle" and self.cw.refs.statistics()["owned"]:
            # Objects it owns are still referenced (by its borrowers or its own
            # refs): exiting would lose them, so it stays, as Ray's owners do.
            conn.notify("node.exit_declined", Empty())
            return
        self.main_q.put(None)

    # -- main thread ------------------------------------------------------------------------
    def main_loop(self) -> None:
        """Run queued tasks and sync actor calls until told to stop."""
        previous = self.interrupts.install()
        try:
            while True:
                item = self.main_q.get()
                if item is None:
                    return
                if callable(item):
                    item()
                    continue
                if self._setup_failed(item):
                    return
                self.runner.run(item)
                if self.exit_code is not None:
                    return
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)

    def _setup_failed(self, item: Any) -> bool:
        """Run the setup hook before the first task; if it failed, fail the task."""
        spec, _, reply, conn = item
        failed = self.setup_hook.ensure(spec.job_id)
        if failed is None:
            return False
        result = self.runner.packer.error(
            spec, exc_mod.RuntimeEnvSetupError(failed), conn
        )
        result[0].exit_worker = True  # the caller drops this worker; it exits
        self.runner.send_reply(reply, conn, result)
        return True


def _flush_std() -> None:
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (OSError, ValueError):
            pass
