"""Run tasks and actor calls: resolve arguments, call, store returns, capture errors.

Data flow::

    loop thread: worker.push_task ---> main_q (normal tasks, sync actors)
                                  \\--> thread pool (threaded actors)
                                   \\-> actor event loop (async actors)
    executing thread: prepare (function, args) -> call -> pack returns
                      -> loop.call_soon_threadsafe(reply future)

Task code never runs on the loop thread, so a long task does not stall
heartbeats, cancellation or incoming calls.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import queue
import signal
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.common.ids import object_id_for
from ember.protocol.messages import (
    Address,
    CreateActorOnWorkerReply,
    Empty,
    GeneratorItemMessage,
    KvGetRequest,
    ObjRef,
    ReturnObject,
    TaskReply,
    TaskSpec,
)
from ember.rpc.connection import REPLY_LATER, Connection
from ember.rpc.errors import RpcError
from ember.runtime import task_context
from ember.runtime.object_ref import ObjectRef
from ember.runtime.serialization import (
    deserialize,
    dumps_plain,
    loads_function,
    serialize,
    substitute_args,
)
from ember.runtime.task_context import TaskContext

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker
    from ember.worker.actor_host import ActorHost

logger = logging.getLogger(__name__)
_HOST_IP = "127.0.0.1"


class Executor:
    """Executes what this worker is asked to run."""

    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self.main_q: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.functions: dict[bytes, Any] = {}
        self.jobs_loaded: set[bytes] = set()
        self.running_main: bytes = b""
        self.cancelled: set[bytes] = set()
        self.actor: ActorHost | None = None
        self.exit_code: int | None = None
        self._main_ident = threading.main_thread().ident
        self._tl = threading.local()
        #: the driver of each job seen, where task output is streamed
        self.job_drivers: dict[bytes, Address] = {}
        cw.handlers.update(
            {
                "worker.push_task": self.h_push_task,
                "worker.create_actor": self.h_create_actor,
                "worker.cancel_task": self.h_cancel_task,
                "worker.exit": self.h_exit,
            }
        )

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
            if self.exit_code is not None:
                return TaskReply(error="the actor has exited (exit_actor() was called)")
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
            self.main_q.put(item)
        return REPLY_LATER if direct else reply

    async def h_create_actor(self, conn: Connection, req: Any, bufs: Any) -> Any:
        from ember.worker.actor_host import create_actor

        fut = asyncio.get_running_loop().create_future()
        if req.gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in req.gpu_ids)
        self.main_q.put(lambda: create_actor(self, req.spec, fut))
        return await fut

    def h_cancel_task(self, conn: Connection, req: Any, bufs: Any) -> Empty:
        if self.running_main == req.task_id:
            if req.force:
                os._exit(1)
            signal.pthread_kill(self._main_ident, signal.SIGINT)  # type: ignore[arg-type]
        else:
            self.cancelled.add(req.task_id)
        return Empty()

    def h_exit(self, conn: Connection, req: Any, bufs: Any) -> None:
        if req.force:
            _flush_std()
            os._exit(1)
        self.main_q.put(None)

    # -- main thread ------------------------------------------------------------------------
    def main_loop(self) -> None:
        while True:
            item = self.main_q.get()
            if item is None:
                return
            if callable(item):
                item()
                continue
            self.run_item(item)
            if self.exit_code is not None:
                return

    def run_item(self, item: Any) -> None:
        spec, bufs, reply, conn = item
        is_main = threading.current_thread() is threading.main_thread()
        if is_main:
            self.running_main = spec.task_id
        try:
            result = self.execute(spec, bufs, conn)
        finally:
            if is_main:
                self.running_main = b""
        self.send_reply(reply, conn, result)

    def send_reply(self, reply: Any, conn: Connection, result: Any) -> None:
        """Any thread: answer a push, directly (request id) or via its future."""
        if type(reply) is int:
            conn.reply_from_thread(reply, result)
        else:
            self.cw.loop_thread.call(_resolve, reply, result)

    def execute(
        self, spec: TaskSpec, bufs: list[Any], conn: Connection
    ) -> tuple[Any, list[Any]]:
        if spec.actor_id and self.exit_code is not None:
            return TaskReply(error="the actor has exited (exit_actor() was called)"), []
        if spec.task_id in self.cancelled:
            self.cancelled.discard(spec.task_id)
            return self.pack_error(spec, exc_mod.TaskCancelledError(spec.task_id.hex()))
        task_context.set_current(self.context_for(spec))
        self._tl.conn = conn
        if spec.gpu_ids:
            os.environ["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in spec.gpu_ids)
        try:
            fn = self.resolve_callable(spec)
            args, kwargs = self.load_args(spec, bufs)
            if spec.streaming:
                return self.run_generator(spec, fn(*args, **kwargs), conn)
            result = fn(*args, **kwargs)
            if inspect.iscoroutine(result):
                result = asyncio.run(result)
            return self.pack_returns(spec, result)
        except KeyboardInterrupt:
            return self.pack_error(
                spec,
                self.task_error(spec, exc_mod.TaskCancelledError(spec.task_id.hex())),
            )
        except SystemExit as exc:
            if spec.actor_id:  # exit_actor()
                self.exit_code = 0
                reply, frames = self.pack_error(spec, self.exit_error(spec))
                reply.exit_worker = True
                return reply, frames
            return self.pack_error(spec, self.task_error(spec, exc))
        except Exception as exc:  # noqa: BLE001  (user code or user values)
            return self.pack_error(
                spec, self.task_error(spec, exc), self.retryable(spec, exc)
            )
        finally:
            task_context.set_current(None)

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
                "runtime_env": {"env_vars": spec.env_vars},
                "placement_group": spec.strategy
                if spec.strategy.get("type") == "placement_group"
                else actor.get("placement_group"),
            },
        )

    # -- pieces ---------------------------------------------------------------------------
    def resolve_callable(self, spec: TaskSpec) -> Any:
        if spec.actor_id:
            assert self.actor is not None
            self.load_job(spec.job_id)
            return getattr(self.actor.instance, spec.method)
        return self.load_function(spec.job_id, spec.function_key)

    def load_function(self, job_id: bytes, key: bytes) -> Any:
        fn = self.functions.get(key)
        if fn is None:
            self.load_job(job_id)
            data = self.kv_get("fn", key)
            if data is None:
                raise exc_mod.EmberSystemError(
                    f"function {key.hex()} is not in the function table"
                )
            fn = self.functions[key] = loads_function(data)
        return fn

    def load_job(self, job_id: bytes) -> None:
        if job_id in self.jobs_loaded:
            return
        self.jobs_loaded.add(job_id)
        data = self.kv_get("job", job_id)
        if data is None:
            return
        cfg = loads_function(data)
        self.cw.namespace = cfg.get("namespace", "")
        if cfg.get("driver"):
            self.job_drivers[job_id] = Address(*cfg["driver"])
        for p in reversed(cfg.get("sys_path", [])):
            if p not in sys.path:
                sys.path.insert(0, p)

    def kv_get(self, namespace: str, key: bytes) -> bytes | None:
        reply, _ = self.cw.run(
            self.cw.control.call(
                "control.kv_get", KvGetRequest(namespace=namespace, key=key)
            )
        )
        return reply.value

    def load_args(
        self, spec: TaskSpec, bufs: list[Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        if spec.args_ref is not None:
            ref = ObjectRef(spec.args_ref.oid, spec.args_ref.owner)
            a, k = self.cw.objects.get([ref], None)[0]
        else:
            a, k = deserialize(spec.args, bufs[: spec.nargbufs])
        if spec.ref_args:
            values: list[Any] = [None] * len(spec.ref_args)
            fetch = _take_inlined(spec, bufs, values)
            if not fetch:
                return substitute_args(a, k, values)
            refs = [
                ObjectRef(spec.ref_args[i].oid, spec.ref_args[i].owner) for i in fetch
            ]
            ctx = task_context.get()
            if ctx is not None:
                # Waiting for arguments is not a blocked task: keep the CPU lease
                # (lending it would let the node oversubscribe its CPUs).
                ctx.extra["resolving_args"] = True
            try:
                for i, v in zip(fetch, self.cw.objects.get(refs, None), strict=True):
                    values[i] = v
            except exc_mod.TaskError as err:
                raise _ArgumentError(err) from err
            finally:
                if ctx is not None:
                    ctx.extra.pop("resolving_args", None)
            return substitute_args(a, k, values)
        return list(a), k

    def retryable(self, spec: TaskSpec, exc: BaseException) -> bool:
        if spec.retry_exceptions:
            return True
        if spec.retry_exception_types:
            types = loads_function(spec.retry_exception_types)
            return isinstance(exc, tuple(types))
        return False

    def task_error(self, spec: TaskSpec, exc: BaseException) -> exc_mod.TaskError:
        if isinstance(exc, _ArgumentError):
            exc = exc.cause
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        tb = _trim_traceback(tb)
        actor = task_context.process_actor
        return exc_mod.TaskError(
            spec.name,
            tb,
            exc,
            pid=os.getpid(),
            ip=_HOST_IP,
            actor_repr=actor.get("repr"),
            actor_id=spec.actor_id.hex() if spec.actor_id else None,
        )

    def exit_error(self, spec: TaskSpec) -> BaseException:
        return exc_mod.ActorDiedError(
            f"The actor {task_context.process_actor.get('class_name', '')} "
            f"({spec.actor_id.hex()}) exited: exit_actor() was called in {spec.name!r}. "
            "It is not restarted.",
            spec.actor_id.hex(),
        )

    def pack_returns(self, spec: TaskSpec, result: Any) -> tuple[TaskReply, list[Any]]:
        n = spec.num_returns
        if n == 1:
            values = [result]
        elif n == 0:
            values = []
        else:
            if not isinstance(result, (tuple, list)) or len(result) != n:
                err = ValueError(
                    f"Task {spec.name!r} was declared with num_returns={n} but returned "
                    f"{type(result).__name__} {'of length ' + str(len(result)) if isinstance(result, (tuple, list)) else ''}; "
                    f"return a tuple or list of exactly {n} values."
                )
                return self.pack_error(spec, self.task_error(spec, err))
            values = list(result)
        returns: list[ReturnObject] = []
        frames: list[Any] = []
        try:
            for i, v in enumerate(values):
                self.pack_one(
                    spec, object_id_for(spec.task_id, i + 1), v, returns, frames
                )
        except (TypeError, exc_mod.ObjectStoreFullError) as exc:
            return self.pack_error(spec, self.task_error(spec, exc))
        return TaskReply(returns=returns), frames

    def pack_one(
        self,
        spec: TaskSpec,
        oid: bytes,
        value: Any,
        returns: list[ReturnObject],
        frames: list[Any],
    ) -> None:
        ser = serialize(value)
        contained = []
        if ser.contained:
            self.cw.escrow.setdefault(spec.task_id, []).extend(ser.contained)
            contained = [
                ObjRef(oid=r._id, owner=r._owner or self.cw.address)
                for r in ser.contained
            ]
        if ser.total_bytes() < self.cw.config.inline_threshold_bytes:
            f = ser.frames()
            returns.append(ReturnObject(oid=oid, nbufs=len(f), contained=contained))
            frames.extend(f)
        else:
            size = ser.layout_size()
            self.cw.run(self.cw.objects.create_in_store(oid, size, ser))
            returns.append(
                ReturnObject(
                    oid=oid, node_id=self.cw.node_id, size=size, contained=contained
                )
            )

    def pack_error(
        self, spec: TaskSpec, error: BaseException, retryable: bool = False
    ) -> tuple[TaskReply, list[Any]]:
        data = dumps_plain(error)
        n = max(spec.num_returns, 1) if not spec.streaming else 0
        returns = [
            ReturnObject(oid=object_id_for(spec.task_id, i + 1), nbufs=1, is_error=True)
            for i in range(n)
        ]
        reply = TaskReply(returns=returns, retryable_error=retryable)
        if spec.streaming:
            reply.error = ""
            self._send_item(spec, None, error)
        return reply, [data] * n

    def run_generator(
        self, spec: TaskSpec, gen: Any, conn: Connection
    ) -> tuple[Any, list[Any]]:
        count = 0
        try:
            for value in gen:
                count += 1
                self._send_item(spec, count, value)
        except Exception as exc:  # noqa: BLE001  (user code or user values)
            self._send_item(spec, None, self.task_error(spec, exc))
        return TaskReply(num_streamed=count), []

    def _send_item(self, spec: TaskSpec, index: int | None, value: Any) -> None:
        conn = self._tl.conn
        returns: list[ReturnObject] = []
        frames: list[Any] = []
        if index is None:  # an error item
            idx = -1
            data = dumps_plain(value)
            returns.append(ReturnObject(oid=b"", nbufs=1, is_error=True))
            frames = [data]
        else:
            idx = index
            self.pack_one(
                spec, object_id_for(spec.task_id, index), value, returns, frames
            )
        obj = returns[0]
        if idx == -1:
            # the caller names the error item itself (generator_failed); send as a reply error
            self.cw.loop_thread.call(_notify_gen_error, conn, spec.task_id, frames[0])
            return
        msg = GeneratorItemMessage(task_id=spec.task_id, index=idx, obj=obj)
        self.cw.loop_thread.call(_notify, conn, "worker.generator_item", msg, frames)

    def create_reply(self, ok: bool, error: BaseException | None = None) -> Any:
        if ok:
            return CreateActorOnWorkerReply(ok=True)
        text = str(error) if error is not None else "constructor failed"
        return CreateActorOnWorkerReply(
            ok=False, error=dumps_plain(error), error_text=text
        )


class _ArgumentError(Exception):
    """An argument's task failed; the failure propagates as this task's error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


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


def _resolve(fut: asyncio.Future[Any], result: Any) -> None:
    if not fut.done():
        fut.set_result(result)


def _notify(conn: Connection, method: str, msg: Any, frames: list[Any]) -> None:
    try:
        conn.notify(method, msg, frames)
    except RpcError:
        pass


def _notify_gen_error(conn: Connection, task_id: bytes, data: bytes) -> None:
    obj = ReturnObject(oid=b"", nbufs=1, is_error=True)
    _notify(
        conn,
        "worker.generator_item",
        GeneratorItemMessage(task_id=task_id, index=-1, obj=obj),
        [data],
    )


def _trim_traceback(tb: str) -> str:
    lines = tb.splitlines(keepends=True)
    out: list[str] = []
    skip = False
    for line in lines:
        if line.startswith('  File "') and "/ember/worker/" in line:
            skip = True
            continue
        if skip and line.startswith("    "):
            continue
        skip = False
        out.append(line)
    return "".join(out)


def _flush_std() -> None:
    for s in (sys.stdout, sys.stderr):
        try:
            s.flush()
        except (OSError, ValueError):
            pass
