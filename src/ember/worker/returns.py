"""What a call sends back: its return values, its error, or its streamed items.

A small return value travels inline as reply frames; a large one is written
to the node's arena (``Objects.create_in_store``) and the reply names the
node. Refs inside a return value go into escrow until the caller has
registered as their borrower (docs/design.md, "Reference counting"). An error
is pickled once per declared return, so every ref the caller holds raises it.
A streaming call's items (and the error its generator raised) go out as
``worker.generator_item`` notifications, through the loop thread, before its
reply; a streaming call that fails otherwise (cancelled, a failed argument)
returns the error as its completed ref (index 0), as Ray does.
"""

from __future__ import annotations

import os
import traceback
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.common.ids import object_id_for
from ember.protocol.messages import (
    GeneratorItemMessage,
    ObjRef,
    ReturnObject,
    TaskReply,
    TaskSpec,
)
from ember.rpc.connection import Connection
from ember.rpc.errors import RpcError
from ember.runtime import task_context
from ember.runtime.serialization import error_bytes, serialize

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker

Result = tuple[TaskReply, list[Any]]


class ArgumentError(Exception):
    """An argument's task failed; the failure propagates as this task's error."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class ReturnPacker:
    """Turns values and exceptions into replies (and streamed items)."""

    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw

    def task_error(self, spec: TaskSpec, exc: BaseException) -> exc_mod.TaskError:
        """``exc`` raised by the call, as the ``TaskError`` its caller gets."""
        if isinstance(exc, ArgumentError):
            exc = exc.cause
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        actor = task_context.process_actor
        return exc_mod.TaskError(
            spec.name,
            _trim_traceback(tb),
            exc,
            pid=os.getpid(),
            ip=self.cw.node_ip,
            actor_repr=actor.get("repr"),
            actor_id=spec.actor_id.hex() if spec.actor_id else None,
        )

    def returns(self, spec: TaskSpec, result: Any, conn: Connection) -> Result:
        """The reply for a call that returned ``result``."""
        n = spec.num_returns
        if n == 1:
            values = [result]
        elif n == 0:
            values = []
        else:
            if not isinstance(result, (tuple, list)) or len(result) != n:
                got = type(result).__name__
                if isinstance(result, (tuple, list)):
                    got += f" of length {len(result)}"
                err = ValueError(
                    f"Task {spec.name!r} was declared with num_returns={n} but returned "
                    f"{got}; return a tuple or list of exactly {n} values."
                )
                return self.error(spec, self.task_error(spec, err), conn)
            values = list(result)
        returns: list[ReturnObject] = []
        frames: list[Any] = []
        try:
            for i, v in enumerate(values):
                self.pack_one(
                    spec, object_id_for(spec.task_id, i + 1), v, returns, frames
                )
        except (TypeError, exc_mod.ObjectStoreFullError) as exc:
            return self.error(spec, self.task_error(spec, exc), conn)
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
            self.cw.run(
                self.cw.objects.create_in_store(oid, size, ser, owner=spec.owner)
            )
            returns.append(
                ReturnObject(
                    oid=oid, node_id=self.cw.node_id, size=size, contained=contained
                )
            )

    def error(
        self,
        spec: TaskSpec,
        error: BaseException,
        conn: Connection,
        retryable: bool = False,
    ) -> Result:
        """The reply for a call that failed with ``error``."""
        data = error_bytes(error)
        if spec.streaming:
            # A failure outside the generator (cancelled, an argument failed, ...):
            # the completed ref holds it, as in Ray; the caller streams that ref last.
            obj = ReturnObject(
                oid=object_id_for(spec.task_id, 0), nbufs=1, is_error=True
            )
            return TaskReply(returns=[obj], retryable_error=retryable), [data]
        n = max(spec.num_returns, 1)
        returns = [
            ReturnObject(oid=object_id_for(spec.task_id, i + 1), nbufs=1, is_error=True)
            for i in range(n)
        ]
        return TaskReply(returns=returns, retryable_error=retryable), [data] * n

    def stream(self, spec: TaskSpec, gen: Any, conn: Connection) -> Result:
        """Send the generator's items as they come; the reply counts them."""
        count = 0
        try:
            for value in gen:
                count += 1
                returns: list[ReturnObject] = []
                frames: list[Any] = []
                oid = object_id_for(spec.task_id, count)
                self.pack_one(spec, oid, value, returns, frames)
                msg = GeneratorItemMessage(
                    task_id=spec.task_id, index=count, obj=returns[0]
                )
                self.cw.loop_thread.call(
                    _notify, conn, "worker.generator_item", msg, frames
                )
        except Exception as exc:  # noqa: BLE001  (user code or user values)
            self._send_error_item(spec, error_bytes(self.task_error(spec, exc)), conn)
        return TaskReply(num_streamed=count), []

    def _send_error_item(self, spec: TaskSpec, data: bytes, conn: Connection) -> None:
        # the caller names the error item itself (generator_failed)
        obj = ReturnObject(oid=b"", nbufs=1, is_error=True)
        msg = GeneratorItemMessage(task_id=spec.task_id, index=-1, obj=obj)
        self.cw.loop_thread.call(_notify, conn, "worker.generator_item", msg, [data])


def _notify(conn: Connection, method: str, msg: Any, frames: list[Any]) -> None:
    try:
        conn.notify(method, msg, frames)
    except RpcError:
        pass


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
