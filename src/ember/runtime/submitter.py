"""Normal-task submission: worker leases, direct push, retries.

Data flow::

    user thread: f.remote() -> PendingTask --loop.call--> TaskSubmitter.submit
        | per scheduling key (resources, runtime env): a queue of tasks
        v
    node daemon  <-- node.request_worker_lease --  (one request per task waiting,
        |                                             up to max_pending_lease_requests)
        +-- LeaseReply(worker address) -->  LeasedWorker
                                              | worker.push_task (direct, no daemon)
                                              v
                                           worker executes, replies with returns
    on reply: returns go to the memory store; the next queued task is pushed to
    the same worker; an idle lease is returned after ``lease_linger_s``.

Failures: a lost connection to the worker means it died: the submitter asks
the worker's daemon why (``runtime/worker_deaths.py``: OOM kill, signal, exit
code), returns the lease, and retries the task (``max_retries``, -1 = forever)
on a new lease, else its returns get ``OutOfMemoryError`` (the memory monitor
killed it) or ``WorkerCrashedError`` naming the signal or exit code.
``retry_exceptions`` retries application errors the worker marked retryable.
A task scheduled into a placement group that was removed (its lease request is
infeasible, or its worker was stopped with the group's bundles) fails with
``TaskPlacementGroupRemoved``.

Lineage: a finished task is recorded with the owner's ``Recovery`` (its spec
and argument frames, while its returns are referenced), and
:meth:`TaskSubmitter.resubmit` runs it again when a return of it was lost
with its node; each re-execution takes one of its retries.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from ember import exceptions as exc_mod
from ember.common.config import Config
from ember.protocol.messages import (
    LeaseRequest,
    PlacementGroupRequest,
    ReturnLeaseRequest,
    TaskReply,
    TaskSpec,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RemoteError, RpcError
from ember.runtime import task_context, task_events
from ember.runtime.lineage import LineageRecord
from ember.runtime.links import Links
from ember.runtime.recovery import Recovery
from ember.runtime.returns import Returns
from ember.runtime.task_args import TaskArgs
from ember.runtime.worker_deaths import ask_death, death_error, retry_reason
from ember.runtime_env.runtime_env import worker_key
from ember.scheduler import labels
from ember.scheduler.resources import describe

logger = logging.getLogger(__name__)

_record = task_events.record
_record_submit = task_events.record_submit
_record_state = task_events.record_state
_now = time.time
_context = task_context.get
_FAILED = task_events.FAILED
_QUEUED = task_events.PENDING_NODE_ASSIGNMENT
_PUSHED = task_events.SUBMITTED_TO_WORKER


class PendingTask:
    """A submitted task (or actor call) until its returns are stored."""

    __slots__ = (
        "arg_oids",
        "cancelled",
        "frames",
        "key",
        "retries_left",
        "return_oids",
        "spec",
        "worker",
    )

    def __init__(
        self,
        spec: TaskSpec,
        frames: list[Any],
        return_oids: list[bytes],
        arg_oids: list[bytes],
        retries_left: int,
    ) -> None:
        self.spec = spec
        self.frames = frames
        self.return_oids = return_oids
        self.arg_oids = arg_oids
        self.retries_left = retries_left
        self.key: tuple[Any, ...] = ()
        self.worker: LeasedWorker | None = None
        self.cancelled = False
        ctx = _context()
        _record_submit((spec, spec.attempt, _now(), ctx.task_id if ctx else None))


class LeasedWorker:
    """A worker leased for one scheduling key."""

    __slots__ = (
        "address",
        "conn",
        "death",
        "gpu_ids",
        "inflight",
        "lease_id",
        "linger",
        "node_conn",
    )

    def __init__(
        self, lease_id: int, conn: Connection, node_conn: Connection, address: Any
    ) -> None:
        self.lease_id = lease_id
        self.conn = conn
        self.node_conn = node_conn
        self.address = address
        self.inflight = 0
        self.linger: asyncio.TimerHandle | None = None
        self.gpu_ids: list[int] = []
        #: once its connection is lost: the daemon's account of its death
        self.death: asyncio.Task[Any] | None = None


class KeyState:
    """Queue and leases of one scheduling key."""

    def __init__(self, spec: TaskSpec, key: tuple[Any, ...]) -> None:
        self.key = key
        self.resources = spec.resources
        self.env_vars = spec.env_vars
        self.runtime_env = spec.runtime_env
        self.queue: deque[PendingTask] = deque()
        self.workers: list[LeasedWorker] = []
        self.pending_leases = 0
        self.last_infeasible_warning = 0.0
        self.name = spec.name
        self.strategy = spec.strategy
        #: whether this key's tasks are retried (the memory monitor kills those first)
        self.retriable = bool(key[3])


class TaskSubmitter:
    """Submits normal tasks of one core worker."""

    def __init__(
        self,
        args: TaskArgs,
        returns: Returns,
        links: Links,
        config: Config,
        warn: Callable[[str], None],
        recovery: Recovery | None = None,
    ) -> None:
        self._args = args
        self._returns = returns
        self._links = links
        self._config = config
        self._warn = warn
        self.keys: dict[tuple[Any, ...], KeyState] = {}
        self.tasks: dict[bytes, PendingTask] = {}
        #: attempts made again after a failure (a worker's death, retry_exceptions)
        self.retried = 0
        self._recovery = recovery
        if recovery is not None:
            recovery.resubmit = self.resubmit
            recovery.running = self.tasks.__contains__

    def submit(self, task: PendingTask) -> None:
        """Loop thread: queue ``task`` and make progress."""
        spec = task.spec
        env_key = (
            worker_key(spec.env_vars, spec.runtime_env)
            if spec.env_vars or spec.runtime_env
            else ""
        )
        task.key = (
            tuple(sorted(spec.resources.items())),
            env_key,
            repr(sorted(spec.strategy.items())) if spec.strategy else "",
            task.retries_left != 0 and not spec.streaming,
        )
        ks = self.keys.get(task.key)
        if ks is None:
            ks = self.keys[task.key] = KeyState(spec, task.key)
        task.key = ks.key  # one shared key object per scheduling key
        self.tasks[spec.task_id] = task
        if self._links.dead_nodes and spec.ref_args and self._recovery is not None:
            self._recovery.before_submit(spec.ref_args)
        pending = self._args.pending(spec.ref_args)
        if pending:
            # Resolve our own arguments before asking for a worker, so that a task
            # waiting for another never sits on a lease the other one needs.  A
            # failed argument is ready too: the worker reports it as this task's error.
            self._args.when_all_ready(pending, lambda: self._deps_ready(task, ks))
            return
        ks.queue.append(task)
        _record_state((spec.task_id, spec.attempt, _QUEUED, _now()))
        self._pump(task.key, ks)

    def _deps_ready(self, task: PendingTask, ks: KeyState) -> None:
        spec = task.spec
        if task.cancelled or spec.task_id not in self.tasks:
            return
        ks.queue.append(task)
        _record_state((spec.task_id, spec.attempt, _QUEUED, _now()))
        self._pump(task.key, ks)

    def _pump(self, key: tuple[Any, ...], ks: KeyState) -> None:
        limit = self._config.max_tasks_in_flight_per_worker
        for w in ks.workers:
            while w.inflight < limit and ks.queue:
                self._push(ks.queue.popleft(), w)
        if ks.queue:
            want = min(len(ks.queue), self._config.max_pending_lease_requests)
            while ks.pending_leases < want:
                ks.pending_leases += 1
                self._links.sup.spawn(self._request_lease(key, ks), name="lease")
        else:
            for w in ks.workers:
                if w.inflight == 0 and w.linger is None:
                    w.linger = asyncio.get_running_loop().call_later(
                        self._config.lease_linger_s, self._return_if_idle, key, ks, w
                    )

    async def _request_lease(self, key: tuple[Any, ...], ks: KeyState) -> None:
        node_conn = self._links.node_conn
        spilled = False
        try:
            while ks.queue:
                req = LeaseRequest(
                    resources=ks.resources,
                    job_id=self._links.job_id,
                    name=ks.name,
                    env_key=key[1],
                    env_vars=ks.env_vars,
                    strategy=self._with_locality(ks),
                    spilled=spilled,
                    retriable=ks.retriable,
                    owner_id=self._links.worker_id,
                    runtime_env=ks.runtime_env,
                )
                try:
                    reply, _ = await node_conn.call("node.request_worker_lease", req)
                except RpcError:
                    if node_conn is self._links.node_conn:
                        raise
                    node_conn, spilled = self._links.node_conn, False  # that node died
                    continue
                if reply.runtime_env_error:
                    # no worker could start in the env: nothing runs, nothing retries
                    self._fail_queue(
                        ks, exc_mod.RuntimeEnvSetupError(reply.runtime_env_error)
                    )
                    return
                if reply.unschedulable:
                    self._fail_queue(
                        ks,
                        exc_mod.TaskUnschedulableError(
                            f"Task {ks.name!r} cannot be scheduled: {reply.unschedulable}."
                        ),
                    )
                    return
                if reply.spillback:
                    try:
                        node_conn = await self._links.connect_node(
                            reply.spillback_node, reply.spillback
                        )
                        spilled = True
                    except RpcError:
                        # That node just died; our node's view will catch up.
                        node_conn, spilled = self._links.node_conn, False
                        await asyncio.sleep(0.1)
                    continue
                if reply.infeasible:
                    if await self._group_removed(ks.strategy):
                        self._fail_queue(ks, exc_mod.TaskPlacementGroupRemoved())
                        return
                    self._warn_infeasible(ks)
                    await asyncio.sleep(1.0)
                    node_conn, spilled = self._links.node_conn, False
                    continue
                if not ks.queue:
                    node_conn.notify(
                        "node.return_worker_lease",
                        ReturnLeaseRequest(lease_id=reply.lease_id),
                    )
                    return
                try:
                    conn = await self._links.connect_to(reply.worker)
                except RpcError:
                    node_conn.notify(
                        "node.return_worker_lease",
                        ReturnLeaseRequest(lease_id=reply.lease_id, worker_dead=True),
                    )
                    continue
                w = LeasedWorker(reply.lease_id, conn, node_conn, reply.worker)
                w.gpu_ids = list(reply.assigned.get("GPU", []))
                ks.workers.append(w)
                return
        except RpcError as exc:
            if not self._links.shutting_down:
                logger.error("lease request failed: %s", exc)
                self._fail_queue(
                    ks,
                    exc_mod.LocalNodeDiedError(
                        f"The local node daemon is unreachable ({exc}); tasks cannot be scheduled."
                    ),
                )
        finally:
            ks.pending_leases -= 1
            if not self._links.shutting_down:
                self._pump(key, ks)

    def _with_locality(self, ks: KeyState) -> dict[str, Any]:
        """DEFAULT placement prefers the node that stores most of the next task's arguments."""
        if ks.strategy or not ks.queue:
            return ks.strategy
        best = self._args.best_node(ks.queue[0].spec.ref_args)
        if best is None:
            return ks.strategy
        return {"locality": best.hex()}

    def _warn_infeasible(self, ks: KeyState) -> None:
        now = time.monotonic()
        if (
            now - ks.last_infeasible_warning
            < self._config.infeasible_warning_interval_s
        ):
            return
        ks.last_infeasible_warning = now
        msg = (
            f"Warning: the task {ks.name!r} asks for {{{describe(ks.resources)}}}, which no node "
            "in the cluster can ever provide (ember.cluster_resources() shows what there is). "
            "It stays pending until a node with those resources joins; lower its resource "
            "request or add such a node."
        )
        if ks.strategy.get("type") == "node_label" and ks.strategy.get("hard"):
            hard = labels.describe(labels.from_wire(ks.strategy.get("hard")))
            msg = (
                f"Warning: the task {ks.name!r} needs a node whose labels match ({hard}) "
                f"and that can hold {{{describe(ks.resources)}}}; no live node does "
                "(ember.nodes() shows each node's 'Labels'). It stays pending until such "
                "a node joins."
            )
        logger.debug(msg)
        self._warn(msg)  # printed once (it used to be logged too)

    def _warn_retry(self, task: PendingTask, why: str) -> None:
        self.retried += 1
        left = task.retries_left
        remaining = "infinite" if left < 0 else str(left)
        self._warn(
            f"Task {task.spec.name!r} failed because {why}. There are {remaining} "
            "retries remaining, so the task will be retried."
        )

    def _push(self, task: PendingTask, w: LeasedWorker) -> None:
        if w.linger is not None:
            w.linger.cancel()
            w.linger = None
        w.inflight += 1
        task.worker = w
        spec = task.spec
        spec.gpu_ids = w.gpu_ids
        _record_state((spec.task_id, spec.attempt, _PUSHED, _now()))
        try:
            frames = self._args.inline(task.spec, task.frames)
            fut = w.conn.call_nowait("worker.push_task", task.spec, frames)
        except RpcError as exc:
            fut = asyncio.get_running_loop().create_future()
            fut.set_exception(exc)
        fut.add_done_callback(lambda f: self._on_reply(task, w, f))

    def _on_reply(
        self, task: PendingTask, w: LeasedWorker, fut: asyncio.Future[Any]
    ) -> None:
        w.inflight -= 1
        task.worker = None
        ks = self.keys[task.key]
        err = fut.exception() if not fut.cancelled() else RpcError("cancelled")
        if err is not None:
            if task.cancelled:
                self._worker_failed(ks, w)
                self._finish_error(
                    task, exc_mod.TaskCancelledError(task.spec.task_id.hex())
                )
            elif isinstance(err, RemoteError):
                self._worker_failed(ks, w)
                self._finish_error(task, exc_mod.EmberSystemError(str(err)))
            else:
                # No more pushes to it; its lease is returned once its daemon said why.
                self._drop_worker(ks, w)
                if not self._links.shutting_down:  # else its loop stops right away
                    self._links.sup.spawn(self._worker_died(task, ks, w), name="died")
        else:
            reply, frames = fut.result()
            if reply.retryable_error and task.retries_left != 0 and not task.cancelled:
                self._warn_retry(task, "it raised an exception (retry_exceptions)")
                task.retries_left -= 1
                task.spec.attempt += 1
                ks.queue.appendleft(task)
                _record_state((task.spec.task_id, task.spec.attempt, _QUEUED, _now()))
            else:
                self._finish(task, reply, frames, w)
                if reply.exit_worker:
                    self._worker_failed(ks, w)
                elif ks.strategy.get("type") == "SPREAD" and w in ks.workers:
                    # SPREAD places every task anew: one task per lease.
                    ks.workers.remove(w)
                    self._return_lease(w)
        if not self._links.shutting_down:
            self._pump(task.key, ks)

    async def _group_removed(self, strategy: dict[str, Any]) -> bool:
        """Whether ``strategy`` schedules into a placement group that was removed."""
        if strategy.get("type") != "placement_group":
            return False
        request = PlacementGroupRequest(pg_id=bytes.fromhex(strategy["pg_id"]))
        try:
            info, _ = await self._links.control.call(
                "control.get_placement_group", request
            )
        except RemoteError:  # unknown to the control service: treat it as removed
            return True
        except RpcError:  # control service unreachable: keep waiting, as before
            return False
        return bool(info.state == "REMOVED")

    async def _crashed_in_group(
        self, task: PendingTask, ks: KeyState, crashed: BaseException
    ) -> None:
        """A task's worker died in a placement group: the group's removal is the cause?"""
        removed = await self._group_removed(ks.strategy)
        self._finish_error(
            task, exc_mod.TaskPlacementGroupRemoved() if removed else crashed
        )

    def _worker_failed(self, ks: KeyState, w: LeasedWorker) -> None:
        if w in ks.workers:
            self._drop_worker(ks, w)
            self._return_dead(w)

    def _drop_worker(self, ks: KeyState, w: LeasedWorker) -> None:
        if w in ks.workers:
            ks.workers.remove(w)
            if w.linger is not None:
                w.linger.cancel()

    def _return_dead(self, w: LeasedWorker) -> None:
        if not w.node_conn.is_closed():
            w.node_conn.notify(
                "node.return_worker_lease",
                ReturnLeaseRequest(lease_id=w.lease_id, worker_dead=True),
            )

    async def _death_of(self, w: LeasedWorker) -> Any:
        """Ask the daemon once per worker why it died, then return its lease as dead."""
        death = (
            None
            if self._links.shutting_down
            else await ask_death(w.node_conn, w.lease_id)
        )
        self._return_dead(w)
        return death

    async def _worker_died(
        self, task: PendingTask, ks: KeyState, w: LeasedWorker
    ) -> None:
        """``task``'s worker is gone: retry it, or fail it with the daemon's cause."""
        if w.death is None:
            w.death = self._links.sup.spawn(self._death_of(w), name="death-cause")
        death = await asyncio.shield(w.death)
        if self.tasks.get(task.spec.task_id) is not task:
            return  # cancelled (and finished) while we asked
        if task.cancelled:
            self._finish_error(
                task, exc_mod.TaskCancelledError(task.spec.task_id.hex())
            )
        elif task.retries_left != 0 and not task.spec.streaming:
            why = retry_reason(death)
            self._warn_retry(task, why)
            spec = task.spec
            oom = death is not None and death.kind == "oom"
            failure = ("OUT_OF_MEMORY" if oom else "WORKER_DIED", f"Failed: {why}.")
            _record((_FAILED, spec.task_id, spec.attempt, _now(), failure))
            task.retries_left -= 1
            spec.attempt += 1
            ks.queue.appendleft(task)
            _record_state((spec.task_id, spec.attempt, _QUEUED, _now()))
        else:
            crashed = death_error(task.spec.name, death)
            if ks.strategy.get("type") == "placement_group":
                await self._crashed_in_group(task, ks, crashed)
            else:
                self._finish_error(task, crashed)
        if not self._links.shutting_down:
            self._pump(task.key, ks)

    def _finish(
        self,
        task: PendingTask,
        reply: TaskReply,
        frames: list[Any],
        w: LeasedWorker | None,
    ) -> None:
        spec = task.spec
        self.tasks.pop(spec.task_id, None)
        if self._recovery is not None and not spec.streaming:
            self._recovery.record(
                spec.task_id,
                spec,
                task.frames,
                task.return_oids,
                task.arg_oids,
                task.retries_left,
                any(r.node_id for r in reply.returns),
            )
        self._returns.done(
            task.spec, reply, frames, w.conn if w else None, task.arg_oids
        )

    def resubmit(self, rec: LineageRecord) -> None:
        """Run a finished task again: a return of it was lost (its arguments count again)."""
        spec = rec.spec
        spec.attempt += 1
        logger.info("re-running task %r to rebuild a lost object", spec.name)
        task = PendingTask(
            spec,
            rec.frames,
            list(rec.return_oids),
            list(rec.arg_oids),
            rec.retries_left,
        )
        self.submit(task)

    def _finish_error(self, task: PendingTask, error: BaseException) -> None:
        self.tasks.pop(task.spec.task_id, None)
        self._returns.failed(task.spec, task.return_oids, task.arg_oids, error)

    def _fail_queue(self, ks: KeyState, error: BaseException) -> None:
        while ks.queue:
            self._finish_error(ks.queue.popleft(), error)

    def _return_lease(self, w: LeasedWorker) -> None:
        if w.linger is not None:
            w.linger.cancel()
        if not w.node_conn.is_closed():
            w.node_conn.notify(
                "node.return_worker_lease", ReturnLeaseRequest(lease_id=w.lease_id)
            )

    def _return_if_idle(
        self, key: tuple[Any, ...], ks: KeyState, w: LeasedWorker
    ) -> None:
        w.linger = None
        if w.inflight or ks.queue or w not in ks.workers:
            return
        ks.workers.remove(w)
        if not w.node_conn.is_closed():
            w.node_conn.notify(
                "node.return_worker_lease", ReturnLeaseRequest(lease_id=w.lease_id)
            )

    def cancel(self, task_id: bytes, force: bool) -> bool:
        """Cancel a queued or running task; False if it is not ours or already done."""
        task = self.tasks.get(task_id)
        if task is None:
            return False
        task.cancelled = True
        ks = self.keys[task.key]
        if task.worker is None:  # queued, or waiting for its arguments
            if task in ks.queue:
                ks.queue.remove(task)
            self._finish_error(task, exc_mod.TaskCancelledError(task_id.hex()))
            return True
        if task.worker is not None:
            from ember.protocol.messages import CancelTaskRequest

            try:
                task.worker.conn.notify(
                    "worker.cancel_task",
                    CancelTaskRequest(task_id=task_id, force=force),
                )
            except RpcError:
                pass
        return True

    def return_all_leases(self) -> None:
        for ks in self.keys.values():
            for w in ks.workers:
                if w.linger is not None:
                    w.linger.cancel()
                if not w.node_conn.is_closed():
                    w.node_conn.notify(
                        "node.return_worker_lease",
                        ReturnLeaseRequest(lease_id=w.lease_id),
                    )
            ks.workers.clear()

    def statistics(self) -> dict[str, int]:
        return {
            "pending_tasks": len(self.tasks),
            "queued": sum(len(k.queue) for k in self.keys.values()),
            "leased_workers": sum(len(k.workers) for k in self.keys.values()),
            "tasks_retried": self.retried,
        }
