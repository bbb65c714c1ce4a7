"""sys.stdout/sys.stderr replacements that stream lines to the job's driver.

:func:`install` puts them in place in a worker, together with two things a
user expects of "my output reaches the driver":

- ``logging`` records of user loggers (not ``ember.*``) go through the
  stream, so ``logging.warning`` in a task shows on the driver like a print
  (bare messages, as Ray's workers print them); ember's own records stay in
  the worker's log file only.
- ``os._exit`` first drains what was written: lines are handed to the loop
  thread asynchronously, and a print right before ``os._exit`` would
  otherwise die with the process. Called on the loop thread (``worker.exit``,
  when an actor is killed), it sends the queued lines synchronously through
  the node daemon instead.
"""

from __future__ import annotations

import asyncio
import collections
import io
import logging
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn

from ember.common.log_names import SUFFIXES, worker_file
from ember.common.log_rotation import StdRotator, fd_path, process_rotator
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
        rotator: StdRotator | None = None,
    ) -> None:
        self._cw = cw
        self._rotator = rotator
        self._drivers = drivers if drivers is not None else {}
        self._orig = original
        self._is_err = is_err
        self._buf = threading.local()
        self._pid = os.getpid()
        #: loop thread: sends not written yet, and the connections written to
        self.in_flight = 0
        self.used: set[Any] = set()
        #: lines handed over by user threads, sent by the loop thread in order
        self._pending: collections.deque[LogLinesMessage] = collections.deque()

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        if self._cw.loop_thread.in_loop_thread():
            return self._orig.write(s)
        self._orig.write(s)
        pending = getattr(self._buf, "text", "") + s
        if "\n" in pending:
            if self._rotator is not None:
                self.flush()
                self._rotator.check()
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

    def send_partial(self) -> None:
        """Send this thread's unterminated text (the process is about to end)."""
        pending = getattr(self._buf, "text", "")
        if pending:
            self._buf.text = ""
            self._send([pending])

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
            pid=self._pid,
            ip=self._cw.node_ip,
            name=name,
        )
        self._pending.append(msg)
        self._cw.loop_thread.call(self.send_pending)

    def send_pending(self, sync: bool = False) -> None:
        """Loop thread: send the queued messages (``sync``: no awaiting, exit is near)."""
        while self._pending:
            try:
                msg = self._pending.popleft()
            except IndexError:
                return
            self._notify(msg, sync)

    def _notify(self, msg: LogLinesMessage, sync: bool = False) -> None:
        driver = None if sync else self._drivers.get(msg.job_id)
        if driver is not None:
            # Straight to the job's driver, wherever it runs (unix socket on this node).
            cached = self._cw.links.cached_peer(driver)
            if cached is not None:
                try:
                    cached.notify("worker.log_lines", msg)
                    self.used.add(cached)
                    return
                except RpcError:
                    pass
            self.in_flight += 1
            self._cw.sup.spawn(self._send_to_driver(driver, msg), name="log")
            return
        conn = self._cw.node_conn
        if conn is not None and not conn.is_closed():
            try:
                conn.notify("node.worker_log", msg)
                self.used.add(conn)
            except RpcError:
                pass

    async def _send_to_driver(self, driver: Any, msg: LogLinesMessage) -> None:
        try:
            conn = await self._cw.connect_to(driver)
            conn.notify("worker.log_lines", msg)
            self.used.add(conn)
        except RpcError:
            pass  # the driver is gone; the lines stay in this worker's log file
        finally:
            self.in_flight -= 1


class _UserRecords(logging.Filter):
    """Passes the records of user loggers (``ember.*`` stays in the log file)."""

    def __init__(self, user: bool) -> None:
        super().__init__()
        self._user = user

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == "ember" or record.name.startswith("ember.")
        return ours != self._user


def install(cw: CoreWorker, drivers: dict[bytes, Any]) -> None:
    """Route this worker's stdout, stderr and user logging to the drivers.

    Also names this worker's log files after it and rotates them at their limit
    (:mod:`ember.common.log_rotation`).
    """
    rotator = process_rotator()
    _name_logs(cw.worker_id.hex(), rotator)
    root = logging.getLogger()
    for h in root.handlers:
        h.addFilter(_UserRecords(user=False))
    sys.stdout = LogStream(cw, sys.stdout, False, drivers, rotator)
    sys.stderr = err = LogStream(cw, sys.stderr, True, drivers, rotator)
    handler = logging.StreamHandler(err)
    handler.addFilter(_UserRecords(user=True))
    root.addHandler(handler)
    real_exit = os._exit

    def exit_after_drain(status: int) -> NoReturn:
        try:
            drain(cw)
        finally:
            real_exit(status)

    os._exit = exit_after_drain


def _name_logs(worker_id_hex: str, rotator: StdRotator) -> None:
    """``worker-<daemon pid>-<n>.out|err`` -> ``worker-<worker id>-ffffffff-<pid>.out|err``."""
    for fd in (1, 2):
        path = fd_path(fd)
        if path is None:  # not Linux, or not a file (a terminal, a pipe)
            continue
        folder, name = os.path.split(path)
        suffix = name.rpartition(".")[2]
        if name.startswith("worker-") and suffix in SUFFIXES:
            new = os.path.join(folder, worker_file(worker_id_hex, os.getpid(), suffix))
            try:
                os.rename(path, new)
                path = new
            except OSError:
                pass
        rotator.watch(fd, path)


def drain(cw: CoreWorker, timeout_s: float = 2.0) -> None:
    """Send what was written so far and wait (a while) until it left the process."""
    streams = [s for s in (sys.stdout, sys.stderr) if isinstance(s, LogStream)]
    for stream in streams:
        stream.send_partial()
    if cw.loop_thread.in_loop_thread():
        # e.g. worker.exit: the queued sends would never run; the node forwards them
        for stream in streams:
            stream.send_pending(sync=True)
        return
    try:
        cw.run(_written(streams), timeout=timeout_s)
    except Exception:  # noqa: BLE001  (exiting anyway: never block the exit)
        return


async def _written(streams: list[LogStream]) -> None:
    """Loop thread: until every line handed over so far is on the wire (or 2 s)."""
    for _ in range(400):
        await asyncio.sleep(0.005)
        if all(
            st.in_flight <= 0
            and all(c.is_closed() or c.write_buffer_size() == 0 for c in st.used)
            for st in streams
        ):
            return
