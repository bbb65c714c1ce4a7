"""sys.stdout/sys.stderr replacements that stream lines to the job's driver."""

from __future__ import annotations

import io
import os
import threading
from typing import TYPE_CHECKING, Any

from ember.protocol.messages import LogLinesMessage
from ember.rpc.errors import RpcError
from ember.runtime import task_context

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker


class LogStream(io.TextIOBase):
    """Line-buffered stream: complete lines go to the node daemon, tagged with the task."""

    def __init__(
        self,
        cw: CoreWorker,
        original: Any,
        is_err: bool,
        drivers: dict[bytes, Any] | None = None,
    ) -> None:
        self._cw = cw
        self._drivers = drivers if drivers is not None else {}
        self._orig = original
        self._is_err = is_err
        self._buf = threading.local()
        self._pid = os.getpid()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if self._cw.loop_thread.in_loop_thread():
            return self._orig.write(s)
        self._orig.write(s)
        pending = getattr(self._buf, "text", "") + s
        if "\n" in pending:
            *lines, rest = pending.split("\n")
            self._buf.text = rest
            self._send(lines)
        else:
            self._buf.text = pending
        return len(s)

    def flush(self) -> None:
        try:
            self._orig.flush()
        except (OSError, ValueError):
            pass

    def _send(self, lines: list[str]) -> None:
        ctx = task_context.get()
        if ctx is None or not ctx.job_id:
            return
        name = ctx.actor_class or ctx.name
        msg = LogLinesMessage(
            job_id=ctx.job_id,
            prefix=f"({name} pid={self._pid})",
            lines=lines,
            is_err=self._is_err,
        )
        self._cw.loop_thread.call(self._notify, msg)

    def _notify(self, msg: LogLinesMessage) -> None:
        driver = self._drivers.get(msg.job_id)
        if driver is not None:
            # Straight to the job's driver, wherever it runs (unix socket on this node).
            self._cw.sup.spawn(self._send_to_driver(driver, msg), name="log")
            return
        conn = self._cw.node_conn
        if conn is not None and not conn.is_closed():
            try:
                conn.notify("node.worker_log", msg)
            except RpcError:
                pass

    async def _send_to_driver(self, driver: Any, msg: LogLinesMessage) -> None:
        try:
            conn = await self._cw.connect_to(driver)
            conn.notify("worker.log_lines", msg)
        except RpcError:
            pass  # the driver is gone; the lines stay in this worker's log file
