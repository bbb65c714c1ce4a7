"""Running one task or actor call: resolve arguments, call, pack returns, reply.

Every call takes the same path, on whatever thread runs it::

    refusal? (the actor exited) ---------------------------------+
    begin (main thread: the run the cancels aim at)              |
    with CallScope: task context; errors -> an error reply       |
        resolve the callable and the arguments                   |
        call it  (sync; or awaited on an async actor's loop)     |
        pack the returns (inline frames or the arena)            |
    end                                                          v
    reply: from this thread (request id) or via the loop (future)

:meth:`CallRunner.run` is that path for the main thread and an actor's
thread pool, :meth:`CallRunner.run_async` for a coroutine method on an
async actor's event loop; they differ only in how the arguments are loaded
(in a thread when they must be fetched) and in awaiting the method. The
reply is written by the executing thread itself (``reply_from_thread``), so
a finished call costs no hop back through the loop thread.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import threading
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.protocol.messages import ActorDiedRequest, TaskReply, TaskSpec
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.runtime import task_context, task_events
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import deserialize, loads_function, substitute_args
from ember.runtime.task_context import TaskContext
from ember.worker import proctitle
from ember.worker.call_cancels import CallCancels
from ember.worker.functions import FunctionTable
from ember.worker.interrupts import TaskInterrupts
from ember.worker.returns import ArgumentError, Result, ReturnPacker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from ember.runtime.core_worker import CoreWorker

_record = task_events.record
_record_exec = task_events.record_exec
_now = time.time
_EXEC = task_events.EXEC
_RUNNING, _FINISHED = task_events.RUNNING, task_events.FINISHED
_FAILED = task_events.FAILED_STATE

#: (spec, frames, reply slot: request id or future, connection)
Item = tuple[TaskSpec, list[Any], Any, Connection]
EXITED = "the actor has exited (exit_actor() was called)"
#: how long a reply waits for its borrower registrations (an owner that does not
#: answer is gone, and so is its object)
BORROW_ACK_WAIT_S = 30.0


class CallRunner:
    """Runs calls and answers them; holds the actor instance once there is one."""

    def __init__(
        self,
        cw: CoreWorker,
        functions: FunctionTable,
        interrupts: TaskInterrupts,
        stop_main: Callable[[], None],
    ) -> None:
        self.cw = cw
        self.functions = functions
        self.interrupts = interrupts
        self.instance: Any = None
        self.exit_code: int | None = None
        self._stop_main = stop_main
        #: runs per function key, for tasks with ``max_calls``
        self._calls: dict[bytes, int] = {}
        self._main_ident = threading.main_thread().ident
        self.packer = ReturnPacker(cw)
        #: the actor's calls that ``ember.cancel`` can reach (actor calls only)
        self.cancels = CallCancels()

    # -- the one path -----------------------------------------------------------------
    def run(self, item: Item) -> None:
        """Main thread or an actor pool thread: run the call, then reply."""
        spec, bufs, reply, conn = item
        result = self.refusal(spec, conn)
        if result is None:
            if spec.actor_id:  # not interrupted by a cancel (is_canceled() only)
                result = self._call(spec, bufs, conn)
            elif threading.get_ident() == self._main_ident:
                result = self._run_interruptible(spec, bufs, conn)
            else:
                result = self._call(spec, bufs, conn)
            if spec.max_calls and self._used_up(spec):
                result[0].exit_worker = True  # the caller drops this worker
                self._stop_main()
        self.send_reply(reply, conn, result)
        if spec.actor_id:
            self.cancels.end(spec.task_id)

    async def run_async(self, item: Item, method: Any) -> None:
        """An async actor's event loop: run the coroutine ``method``, then reply."""
        spec, bufs, reply, conn = item
        result = self.refusal(spec, conn)
        if result is None:
            with CallScope(self, spec, conn) as call:
                if _all_args_in_push(spec):  # unpickle here, no thread hop
                    args, kwargs = self.load_args(spec, bufs)
                else:  # fetching may block: not on the actor's event loop
                    args, kwargs = await asyncio.to_thread(self.load_args, spec, bufs)
                if spec.streaming:  # an async generator: its items stream out
                    items = _pull(method(*args, **kwargs), asyncio.get_running_loop())
                    call.result = await asyncio.to_thread(
                        self.packer.stream, spec, items, conn
                    )
                else:
                    value = method(*args, **kwargs)
                    if inspect.isasyncgen(value):  # static num_returns: its yields
                        value = _as_returns([x async for x in value], spec)
                    else:
                        value = await value
                    call.returned(value)
            result = call.result
        pending = self.cw.borrowing.registrations_in_flight()
        if pending:  # refs in the arguments: the owners must know of us first
            await asyncio.wait(
                [asyncio.wrap_future(f) for f in pending], timeout=BORROW_ACK_WAIT_S
            )
        self.send_reply(reply, conn, result, borrows_settled=True)
        self.cancels.end(spec.task_id)

    def _run_interruptible(
        self, spec: TaskSpec, bufs: list[Any], conn: Connection
    ) -> Result:
        # A cancel's KeyboardInterrupt can land anywhere from begin() to end()
        # (TaskInterrupts): both stay inside this try.
        try:
            if not self.interrupts.begin(spec.task_id):
                return self.cancelled_before_start(spec, conn)
            result = self._call(spec, bufs, conn)
            self.interrupts.end()
        except KeyboardInterrupt:
            self.interrupts.end()
            result = self.cancelled(spec, conn)
        return result

    def _call(self, spec: TaskSpec, bufs: list[Any], conn: Connection) -> Result:
        with CallScope(self, spec, conn) as call:
            fn = self.resolve_callable(spec)
            task_context.get().extra["function"] = fn  # type: ignore[union-attr]
            args, kwargs = self.load_args(spec, bufs)
            if spec.streaming:
                call.result = self.packer.stream(spec, fn(*args, **kwargs), conn)
            else:
                value = fn(*args, **kwargs)
                if inspect.iscoroutine(value):
                    value = asyncio.run(value)
                elif inspect.isgenerator(value):  # static num_returns: its yields
                    value = _as_returns(list(value), spec)
                call.returned(value)
        return call.result

    def _used_up(self, spec: TaskSpec) -> bool:
        """Count a run of a task with ``max_calls``: whether this worker must now exit."""
        n = self._calls.get(spec.function_key, 0) + 1
        self._calls[spec.function_key] = n
        return n >= spec.max_calls

    def refusal(self, spec: TaskSpec, conn: Connection) -> Result | None:
        """The reply for a call that must not run, or None (then it has begun)."""
        if spec.actor_id:
            if self.exit_code is not None:
                return TaskReply(error=EXITED), []
            if not self.cancels.begin(spec.task_id):
                return self.cancelled_before_start(spec, conn)
        return None

    def adopt_job(self, job_id: bytes) -> None:
        """This process now works for ``job_id``: what it submits from any thread
        (a user's thread has no task context) belongs to that job, whose driver's
        ``sys.path`` and namespace the workers running it load."""
        cw = self.cw
        if job_id and cw.job_id != job_id:
            cw.job_id = cw.links.job_id = job_id

    def send_reply(
        self, reply: Any, conn: Connection, result: Any, borrows_settled: bool = False
    ) -> None:
        """Any thread but the loop's: answer a push, directly (request id) or via its
        future, once the owners of refs this process received know it borrows them."""
        if not borrows_settled:
            pending = self.cw.borrowing.registrations_in_flight()  # usually []
            if pending and not self.cw.loop_thread.in_loop_thread():
                concurrent.futures.wait(pending, timeout=BORROW_ACK_WAIT_S)
        if type(reply) is int:
            conn.reply_from_thread(reply, result)
        else:
            self.cw.loop_thread.call(resolve_future, reply, result)

    # -- pieces -------------------------------------------------------------------------
    def context_for(self, spec: TaskSpec) -> TaskContext:
        actor = task_context.process_actor
        return TaskContext(
            task_id=spec.task_id,
            job_id=spec.job_id,
            name=spec.name,
            actor_id=spec.actor_id,
            actor_class=actor.get("class_name", ""),
            resources=actor.get("resources", {}) if spec.actor_id else spec.resources,
            attempt=spec.attempt,
            extra={
                "runtime_env": actor["runtime_env"]
                if spec.actor_id and "runtime_env" in actor
                else {**spec.runtime_env, "env_vars": spec.env_vars},
                "placement_group": spec.strategy
                if spec.strategy.get("type") == "placement_group"
                else actor.get("placement_group"),
            },
        )

    def resolve_callable(self, spec: TaskSpec) -> Any:
        if spec.actor_id:
            self.functions.load_job(spec.job_id)
            builtin = _BUILTIN_METHODS.get(spec.method)
            if builtin is not None:
                return builtin
            return getattr(self.instance, spec.method)
        return self.functions.load_function(spec.job_id, spec.function_key)

    def load_args(
        self, spec: TaskSpec, bufs: list[Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        if spec.args_ref is not None:
            ref = ObjectRef(spec.args_ref.oid, spec.args_ref.owner)
            a, k = self.cw.objects.get([ref], None)[0]
        else:
            a, k = deserialize(spec.args, bufs[: spec.nargbufs])
        if not spec.ref_args:
            return list(a), k
        values: list[Any] = [None] * len(spec.ref_args)
        fetch = _take_inlined(spec, bufs, values)
        if not fetch:
            return substitute_args(a, k, values)
        refs = [ObjectRef(spec.ref_args[i].oid, spec.ref_args[i].owner) for i in fetch]
        ctx = task_context.get()
        if ctx is not None:
            # Waiting for arguments is not a blocked task: keep the CPU lease
            # (lending it would let the node oversubscribe its CPUs).
            ctx.extra["resolving_args"] = True
        try:
            for i, v in zip(fetch, self.cw.objects.get(refs, None), strict=True):
                values[i] = v
        except exc_mod.TaskError as err:
            raise ArgumentError(err) from err
        finally:
            if ctx is not None:
                ctx.extra.pop("resolving_args", None)
        return substitute_args(a, k, values)

    def retryable(self, spec: TaskSpec, exc: BaseException) -> bool:
        if spec.retry_exceptions:
            return True
        if spec.retry_exception_types:
            types = loads_function(spec.retry_exception_types)
            return isinstance(exc, tuple(types))
        return False

    def cancelled_before_start(self, spec: TaskSpec, conn: Connection) -> Result:
        """The reply for a call cancelled before it started (it never runs)."""
        return self.packer.error(
            spec, exc_mod.TaskCancelledError(spec.task_id.hex()), conn
        )

    def cancelled_actor_call(self, spec: TaskSpec, conn: Connection) -> Result:
        """The reply for an actor call a cancel reached while it ran (Ray's forms:
        a task error wrapping TaskCancelledError on an async actor, the bare
        TaskCancelledError on a sync or threaded one)."""
        if task_context.process_actor.get("is_async"):
            return self.cancelled(spec, conn)
        return self.cancelled_before_start(spec, conn)

    def cancelled(self, spec: TaskSpec, conn: Connection) -> Result:
        cause = exc_mod.TaskCancelledError(spec.task_id.hex())
        return self.packer.error(spec, self.packer.task_error(spec, cause), conn)

    def exited(self, spec: TaskSpec, conn: Connection) -> Result:
        """``exit_actor()`` ran in this call: the actor ends after it."""
        self.exit_code = 0
        self.announce_exit(f"exit_actor() was called in {spec.name!r}")
        reply, frames = self.packer.error(
            spec,
            exc_mod.ActorDiedError(
                exc_mod.ActorDiedErrorContext(
                    error_message=f"The actor exited: exit_actor() was called in "
                    f"{spec.name!r}. It is not restarted.",
                    actor_id=spec.actor_id.hex(),
                    class_name=task_context.process_actor.get("class_name", ""),
                )
            ),
            conn,
        )
        reply.exit_worker = True
        self._stop_main()
        return reply, frames

    def announce_exit(self, why: str) -> None:
        """Tell the control service that this actor's exit is intended (not a crash).

        Only this marks an exit as intended: a process that just ends (even with
        exit code 0, e.g. ``os._exit(0)``) is a crash, restarted under
        ``max_restarts``.  The call waits for the answer, so the service knows
        before the node daemon reports the process gone.
        """
        cw = self.cw
        request = ActorDiedRequest(
            actor_id=task_context.process_actor.get("actor_id", b""),
            worker_id=cw.worker_id,
            reason=f"The actor exited on purpose: {why}.",
            intended=True,
        )
        try:
            cw.run(cw.control.call("control.actor_died", request), timeout=10)
        except (RpcError, OSError, TimeoutError):
            pass  # the service is gone or slow: the exit is then seen as a crash


class CallScope:
    """A call's task context; turns what the call raised into its error reply."""

    def __init__(self, runner: CallRunner, spec: TaskSpec, conn: Connection) -> None:
        self.runner = runner
        self.spec = spec
        self.conn = conn
        self.result: Result = TaskReply(), []

    def __enter__(self) -> CallScope:
        spec = self.spec
        _record_exec((spec.task_id, spec.attempt, _RUNNING, _now()))
        self.runner.adopt_job(spec.job_id)
        task_context.set_current(self.runner.context_for(spec))
        proctitle.running(spec.name)
        if spec.gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpu_ids)
        return self

    def returned(self, value: Any) -> None:
        spec = self.spec
        if spec.actor_id and self.runner.cancels.requested(spec.task_id):
            # a cancel reached it while it ran: its caller gets TaskCancelledError
            self.result = self.runner.cancelled_actor_call(spec, self.conn)
            return
        self.result = self.runner.packer.returns(spec, value, self.conn)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        task_context.set_current(None)
        proctitle.idle()
        spec = self.spec
        if exc is None:
            _record_exec((spec.task_id, spec.attempt, _FINISHED, _now()))
            return False
        r, conn = self.runner, self.conn
        failure: BaseException = exc  # what the task event reports
        if isinstance(exc, SystemExit) and spec.actor_id:
            self.result = r.exited(spec, conn)  # exit_actor()
        elif spec.actor_id and r.cancels.requested(spec.task_id):
            self.result = r.cancelled_actor_call(spec, conn)  # whatever it raised
        elif isinstance(exc, (KeyboardInterrupt, asyncio.CancelledError)):
            self.result = r.cancelled(spec, conn)  # ember.cancel()
        elif isinstance(exc, (Exception, SystemExit)):  # user code or user values
            retry = isinstance(exc, Exception) and r.retryable(spec, exc)
            failure = r.packer.task_error(spec, exc)  # the traceback the caller sees
            self.result = r.packer.error(spec, failure, conn, retry)
        else:
            _record((_EXEC, spec.task_id, spec.attempt, _FAILED, _now(), exc))
            return False
        _record((_EXEC, spec.task_id, spec.attempt, _FAILED, _now(), failure))
        return True


def _as_returns(items: list[Any], spec: TaskSpec) -> Any:
    """What a generator declared with ``num_returns=N`` returns: its N yields."""
    if spec.num_returns == 1 and len(items) == 1:
        return items[0]
    return items  # the packer checks the count


def _ready() -> bool:
    return True


def _terminate() -> None:
    raise SystemExit(0)  # an intended exit, as exit_actor()


#: the methods every actor has (Ray's names): a readiness probe, a graceful exit
_BUILTIN_METHODS: dict[str, Callable[[], Any]] = {
    "__ray_ready__": _ready,
    "__ray_terminate__": _terminate,
}


def _pull(agen: Any, loop: asyncio.AbstractEventLoop) -> Iterator[Any]:
    """An async generator's items for a thread, each awaited on ``loop``."""
    while True:
        try:
            yield asyncio.run_coroutine_threadsafe(agen.__anext__(), loop).result()
        except StopAsyncIteration:
            return


def _all_args_in_push(spec: TaskSpec) -> bool:
    """Whether every argument came inline with the push (no fetch can block)."""
    return spec.args_ref is None and (
        not spec.ref_args
        or (len(spec.inlined) == len(spec.ref_args) and min(spec.inlined) >= 0)
    )


def _take_inlined(spec: TaskSpec, bufs: list[Any], values: list[Any]) -> list[int]:
    """Fill ``values`` from the ref arguments the caller inlined; the indexes left."""
    if not spec.inlined:
        return list(range(len(spec.ref_args)))
    fetch = []
    pos = spec.nargbufs
    for i, n in enumerate(spec.inlined):
        if n < 0:
            fetch.append(i)
            continue
        values[i] = deserialize(bufs[pos], bufs[pos + 1 : pos + n])
        pos += n
    return fetch


def resolve_future(fut: asyncio.Future[Any], result: Any) -> None:
    """Loop thread: complete a reply future (if nobody gave up on it)."""
    if not fut.done():
        fut.set_result(result)
