"""Actor calls: one ordered stream per (caller, actor), restarts, retries.

Data flow::

    handle.method.remote() -> ActorCall --loop.call--> ActorSubmitter.submit
        | actor address known and nothing queued: push now over the one
        | connection to the actor's worker (so calls run in submission order)
        | otherwise: queue, and resolve the address with the control service
        v                         (control.get_actor_info, long-poll)
    worker.push_task(actor task) -> reply -> returns to the memory store

When the connection breaks the actor died: calls in flight are retried on
the restarted actor while ``max_task_retries`` allows (-1 = forever), else
fail with ``ActorDiedError``; queued calls wait for the restart.  When the
control service says DEAD, everything queued fails with the death cause.

Cancel (``ember.cancel`` of a call's ref, :meth:`ActorSubmitter.cancel`): a
call still queued here is dropped and fails with ``TaskCancelledError``; a
call sent to the actor gets ``worker.cancel_task`` on the same connection
(so it arrives after the push), and the actor decides (worker/actor_host.py:
an async call's coroutine is cancelled, a sync call only sees
``is_canceled()``).  A cancelled call is never retried.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from typing import Any

from ember import exceptions as exc_mod
from ember.protocol.messages import (
    CancelTaskRequest,
    GetActorInfoRequest,
    KillActorRequest,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RemoteError, RpcError
from ember.runtime import task_events
from ember.runtime.lineage import LineageRecord
from ember.runtime.links import Links
from ember.runtime.recovery import Recovery
from ember.runtime.returns import Returns
from ember.runtime.submitter import PendingTask
from ember.runtime.task_args import TaskArgs

logger = logging.getLogger(__name__)

_record_state = task_events.record_state
_now = time.time
_PUSHED = task_events.SUBMITTED_TO_WORKER


#: An actor call is held exactly like a task until its returns are stored.
ActorCall = PendingTask


class ActorState:
    """What this caller knows of one actor."""

    def __init__(self, actor_id: bytes, class_name: str) -> None:
        self.actor_id = actor_id
        self.class_name = class_name
        self.conn: Connection | None = None
        self.epoch = 0
        self.queue: deque[ActorCall] = deque()
        self.inflight: dict[bytes, ActorCall] = {}
        self.resolving = False
        self.dead: BaseException | None = None
        self.seq = 0
        # The caller's thread may send a call itself (ActorSubmitter.try_send_now);
        # this lock orders that against the loop's sends.  ``unsent``: calls handed
        # to the loop that it has not taken yet (a thread must not overtake them).
        self.lock = threading.RLock()
        self.unsent = 0
        self.direct = False


class ActorSubmitter:
    """Submits actor calls of one core worker."""

    def __init__(
        self,
        args: TaskArgs,
        returns: Returns,
        links: Links,
        recovery: Recovery | None = None,
    ) -> None:
        self._args = args
        self._returns = returns
        self._links = links
        #: keeps the lineage of calls that may run again (max_task_retries)
        self._recovery = recovery
        self.actors: dict[bytes, ActorState] = {}
        #: calls sent again after their actor restarted (max_task_retries)
        self.retried = 0

    def state(self, actor_id: bytes, class_name: str = "") -> ActorState:
        """This caller's state of ``actor_id``, created on first use (any thread).

        Two threads making the first call on a new handle may both miss; the
        atomic ``setdefault`` makes them share one state (a lost one would
        break call order and the seq numbers).
        """
        st = self.actors.get(actor_id)
        if st is None:
            st = self.actors.setdefault(actor_id, ActorState(actor_id, class_name))
        return st

    def try_send_now(self, call: ActorCall) -> bool:
        """Caller's thread: push ``call`` without a hop through the loop, if allowed.

        Only when the actor's connection is up, nothing of this caller is queued,
        in flight or still on its way to the loop (so order is kept, and bursts
        stay batched), and the call has no ref arguments to wait for.  False:
        hand it to :meth:`hand_to_loop`.
        """
        st = self.actors.get(call.spec.actor_id)
        spec = call.spec
        if st is None or not st.direct or spec.ref_args or spec.streaming:
            return False
        with st.lock:
            conn = st.conn
            if (
                conn is None
                or st.unsent
                or st.queue
                or st.inflight  # a burst is cheaper batched through the loop
                or st.dead is not None
            ):
                return False
            st.seq += 1
            spec.seq = st.seq
            st.inflight[spec.task_id] = call
            _record_state((spec.task_id, spec.attempt, _PUSHED, _now()))
            if conn.call_from_thread(
                "worker.push_task",
                spec,
                call.frames,
                lambda f: self._on_reply(st, call, conn, f),
            ):
                return True
            st.inflight.pop(spec.task_id, None)
            st.seq -= 1
            return False

    def hand_to_loop(self, call: ActorCall) -> None:
        """Caller's thread: submit ``call`` through the loop (batched)."""
        st = self.state(call.spec.actor_id)
        with st.lock:
            st.unsent += 1
        self._links.loop_thread.call_batched(self.submit, call)

    def submit(self, call: ActorCall) -> None:
        st = self.state(call.spec.actor_id)
        with st.lock:
            st.unsent -= 1
            st.seq += 1
            call.spec.seq = st.seq
            if st.dead is not None:
                self._fail(call, st.dead)
                return
            pending = self._args.pending(call.spec.ref_args)
            if (
                not pending
                and st.conn is not None
                and not st.conn.is_closed()
                and not st.queue
            ):
                self._send(st, call)
                return
            st.queue.append(call)
        if pending:
            # a failed argument is ready too: the actor reports it as the call's error
            self._args.when_all_ready(pending, lambda: self._deps_ready(st))
        else:
            self._ensure_resolving(st)

    def _deps_ready(self, st: ActorState) -> None:
        if st.conn is not None and not st.conn.is_closed():
            self._flush(st)
        else:
            self._ensure_resolving(st)

    def _flush(self, st: ActorState) -> None:
        """Send queued calls in order, stopping at one whose arguments are not ready."""
        with st.lock:
            conn = st.conn
            while (
                st.queue
                and conn is not None
                and st.conn is conn
                and not conn.is_closed()
            ):
                if self._args.pending(st.queue[0].spec.ref_args):
                    return
                self._send(st, st.queue.popleft())

    def _send(self, st: ActorState, call: ActorCall) -> None:
        assert st.conn is not None
        spec = call.spec
        st.inflight[spec.task_id] = call
        _record_state((spec.task_id, spec.attempt, _PUSHED, _now()))
        conn = st.conn
        try:
            frames = self._args.inline(call.spec, call.frames)
            fut = conn.call_nowait("worker.push_task", call.spec, frames)
        except RpcError as exc:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
        fut.add_done_callback(lambda f: self._on_reply(st, call, conn, f))

    def _on_reply(
        self, st: ActorState, call: ActorCall, conn: Connection, fut: Any
    ) -> None:
        with st.lock:
            self._on_reply_locked(st, call, conn, fut)

    def _on_reply_locked(
        self, st: ActorState, call: ActorCall, conn: Connection, fut: Any
    ) -> None:
        st.inflight.pop(call.spec.task_id, None)
        err = fut.exception() if not fut.cancelled() else RpcError("cancelled")
        if err is None:
            reply, frames = fut.result()
            if reply.error:
                self._fail(call, _died(st, reply.error))
                return
            spec = call.spec
            if self._recovery is not None and call.retries_left != 0:
                self._recovery.record(
                    spec.task_id,
                    spec,
                    call.frames,
                    call.return_oids,
                    call.arg_oids,
                    call.retries_left,
                    any(r.node_id for r in reply.returns),
                )
            self._returns.done(spec, reply, frames, conn, call.arg_oids)
            return
        if isinstance(err, RemoteError):
            self._fail(call, exc_mod.EmberSystemError(str(err)))
            return
        # The connection broke: the actor's process died (or is being restarted).
        if st.conn is conn:
            st.conn = None
        if call.cancelled:  # never retried
            self._fail(call, exc_mod.TaskCancelledError(call.spec.task_id.hex()))
            self._ensure_resolving(st)
        elif st.dead is not None:
            self._fail(call, st.dead)
        elif call.retries_left != 0:
            call.retries_left -= 1
            self.retried += 1
            self._requeue(st, call)
            self._ensure_resolving(st)
        else:
            self._fail(
                call,
                _died(
                    st,
                    f"Its worker process exited unexpectedly while running "
                    f"{call.spec.name!r}. Set max_task_retries (and max_restarts) to "
                    "retry calls on a restarted actor.",
                ),
            )
            self._ensure_resolving(st)

    def resubmit(self, rec: LineageRecord) -> None:
        """Call again a finished method whose stored return was lost (loop thread).

        As Ray does for actors with ``max_task_retries``: the call runs on the
        actor as it is now (restarted, if its node died), as a new call in this
        caller's order; each re-run takes one of its retries.
        """
        spec = rec.spec
        spec.attempt += 1
        logger.info("calling %r again to rebuild a lost object", spec.name)
        call = ActorCall(
            spec,
            rec.frames,
            list(rec.return_oids),
            list(rec.arg_oids),
            rec.retries_left,
        )
        st = self.state(spec.actor_id)
        with st.lock:
            st.unsent += 1  # submit() counts it as arrived
        self.submit(call)

    def _requeue(self, st: ActorState, call: ActorCall) -> None:
        items = [*st.queue, call]
        items.sort(key=lambda c: c.spec.seq)
        st.queue = deque(items)

    def _ensure_resolving(self, st: ActorState) -> None:
        if not st.resolving:
            st.resolving = True
            self._links.sup.spawn(self._resolve(st), name="resolve-actor")

    async def _resolve(self, st: ActorState) -> None:
        try:
            while True:
                info = await self._get_info(st)
                if info.state == "DEAD":
                    st.dead = (
                        exc_mod.ActorUnschedulableError(info.death_cause)
                        if info.unschedulable
                        else _died(
                            st,
                            f"The actor is dead: {info.death_cause or 'it died'}",
                            info.class_name,
                            info.pid or 0,
                            init_failed=info.init_failed,
                        )
                    )
                    while st.queue:
                        self._fail(st.queue.popleft(), st.dead)
                    return
                if info.state != "ALIVE" or info.address is None:
                    continue
                try:
                    conn = await self._links.connect_to(info.address)
                except RpcError:
                    st.epoch = info.epoch
                    continue
                with st.lock:
                    st.conn = conn
                    st.epoch = info.epoch
                    st.direct = conn.enable_thread_writes()
                self._flush(st)
                return
        except RpcError as exc:
            if not self._links.shutting_down:
                err = _died(
                    st, f"Cannot reach the control service to locate the actor: {exc}"
                )
                while st.queue:
                    self._fail(st.queue.popleft(), err)
        finally:
            st.resolving = False

    async def _get_info(self, st: ActorState) -> Any:
        req = GetActorInfoRequest(
            actor_id=st.actor_id, wait_after_epoch=st.epoch, timeout_s=0
        )
        reply, _ = await self._links.control.call("control.get_actor_info", req)
        return reply

    def _fail(self, call: ActorCall, error: BaseException) -> None:
        self._returns.failed(call.spec, call.return_oids, call.arg_oids, error)

    def collect(self, actor_id: bytes) -> None:
        """Any thread: the last handle to an actor we created is gone; kill it.

        Calls already submitted still run, as in Ray.
        """
        links = self._links
        if links.shutting_down:
            return
        links.loop_thread.call(
            lambda: links.sup.spawn(self._kill_when_idle(actor_id), name="collect")
        )

    async def _kill_when_idle(self, actor_id: bytes) -> None:
        st = self.actors.get(actor_id)
        while st is not None and (st.inflight or st.queue) and st.dead is None:
            await asyncio.sleep(0.05)
        self.actors.pop(actor_id, None)
        try:
            await self._links.control.call(
                "control.kill_actor",
                KillActorRequest(actor_id=actor_id, no_restart=True, out_of_scope=True),
            )
        except RpcError:
            pass

    def cancel(self, task_id: bytes, force: bool, recursive: bool) -> bool:
        """Loop thread: cancel the call ``task_id`` of this caller; False if unknown.

        A call queued here (not sent yet) fails at once with ``TaskCancelledError``;
        a sent one is asked to stop on the actor (``worker.cancel_task``).  Calls
        that finished, and ids that are not actor calls, are unknown.

        Raises:
            ValueError: ``force=True``, for a call this caller still tracks (as in
                Ray: use ``ember.kill`` to stop an actor).
        """
        for st in list(self.actors.values()):  # user threads may add actors
            with st.lock:
                call = st.inflight.get(task_id)
                queued = None
                if call is None:
                    queued = next(
                        (c for c in st.queue if c.spec.task_id == task_id), None
                    )
                    if queued is None:
                        continue
                if force:
                    raise ValueError(
                        "force=True is not supported for actor tasks. Use "
                        "ray.kill(actor) to stop the actor instead."
                    )
                if queued is not None:
                    st.queue.remove(queued)
                    self._fail(queued, exc_mod.TaskCancelledError(task_id.hex()))
                    self._flush(st)  # calls behind it may be ready to go now
                    return True
                assert call is not None
                call.cancelled = True
                conn = st.conn
            if conn is not None and not conn.is_closed():
                try:
                    conn.notify(
                        "worker.cancel_task",
                        CancelTaskRequest(
                            task_id=task_id, force=False, recursive=recursive
                        ),
                    )
                except RpcError:
                    pass  # the connection broke: the call fails as cancelled
            return True
        return False

    def mark_dead(self, actor_id: bytes, error: BaseException) -> None:
        st = self.state(actor_id)
        st.dead = error

    def statistics(self) -> dict[str, int]:
        return {
            "actors": len(self.actors),
            "inflight": sum(len(s.inflight) for s in self.actors.values()),
            "queued": sum(len(s.queue) for s in self.actors.values()),
            "calls_retried": self.retried,
        }


def _died(
    st: ActorState,
    why: str,
    class_name: str = "",
    pid: int = 0,
    *,
    init_failed: bool = False,
) -> exc_mod.ActorDiedError:
    """The ``ActorDiedError`` callers of the actor ``st`` get, saying ``why``.

    ``init_failed``: the actor's constructor raised (the control service only
    has its text, so the context carries it and the flag is set on the error).
    """
    err = exc_mod.ActorDiedError(
        exc_mod.ActorDiedErrorContext(
            error_message=why,
            actor_id=st.actor_id.hex(),
            class_name=class_name or st.class_name or "",
            pid=pid,
        )
    )
    err._actor_init_failed = init_failed
    return err
