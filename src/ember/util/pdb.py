"""``ray.util.pdb``: a breakpoint in a task or actor opens pdb on a private Unix socket.

Theory of operation.  A worker has no terminal, so :func:`set_trace` (and
``breakpoint()``: workers run with ``PYTHONBREAKPOINT`` pointing here) binds
a Unix socket ``<session>/debug/<id>.sock`` in the session folder (0700,
checked; the socket is made 0600 before it listens), writes a record
``<id>.json`` next to it (0600: where, which task, which process) and prints
where to attach. The task then waits in ``accept`` until one client comes:
``ember debug`` (``cli/debug.py``) lists the records of this user's
sessions and connects. The record and the socket are removed as soon as a
client is accepted, so a breakpoint serves exactly one session; the
client's commands drive an ordinary :class:`pdb.Pdb` whose input and output
are the connection. ``c`` (or the client leaving) detaches and the task
goes on; ``q`` ends the task with ``BdbQuit``.

Only processes of the user can reach the socket (the folder is 0700, as
every socket of a session, docs/security.md); nothing listens on TCP, so
on a cluster of several nodes, ``ember debug`` must run on the node of the
breakpoint. In the driver (or in local mode), the breakpoint is a local pdb
on the terminal, as in Ray.
"""

from __future__ import annotations

import json
import os
import pdb as _std_pdb
import socket
import sys
import time
import traceback
import uuid
from types import FrameType, TracebackType
from typing import IO, Any

from ember.common.private_files import ensure_private_dir, make_private, write_private
from ember.runtime import current

__all__ = ["post_mortem", "set_trace"]

#: the records' folder inside a session folder
DEBUG_DIR = "debug"
#: what every live breakpoint record holds (cli/debug.py reads them)
RECORD_FIELDS = (
    "id",
    "socket",
    "pid",
    "task",
    "filename",
    "lineno",
    "traceback",
    "timestamp",
    "job_id",
    "task_id",
    "actor_id",
    "node_id",
    "worker_id",
)


class _SocketPdb(_std_pdb.Pdb):
    """pdb over one accepted connection; leaving it (``c``, EOF) lets the task go on."""

    def __init__(self, conn: socket.socket) -> None:
        self._conn = conn
        self._io: IO[str] = conn.makefile("rw", encoding="utf-8", newline="\n")
        # nosigint: SIGINT stays the worker's (ember.cancel), and pdb may run off
        # the main thread (threaded actors); readrc: the worker's ~/.pdbrc is not
        # the user's choice for this session
        super().__init__(
            stdin=self._io,
            stdout=self._io,
            skip=["ember.*"],
            nosigint=True,
            readrc=False,
        )
        self.use_rawinput = False
        self.prompt = "(Pdb) "

    def _detach(self) -> None:
        try:
            self._io.flush()
            self._io.close()
        except (OSError, ValueError):  # closed already, or the client went away
            pass
        self._conn.close()

    def do_continue(self, arg: str) -> Any:
        # One session per breakpoint: nothing may stop again on a closed socket.
        self.clear_all_breaks()
        result = super().do_continue(arg)
        self._detach()
        return result

    do_c = do_cont = do_continue

    def do_EOF(self, arg: str) -> Any:
        """The client went away: detach and let the task go on."""
        return self.do_continue(arg)

    def do_quit(self, arg: str) -> Any:
        result = super().do_quit(arg)
        self._detach()
        return result

    do_q = do_exit = do_quit


def set_trace(breakpoint_uuid: Any = None) -> None:
    """Stop here and wait for a debugger: ``ember debug`` attaches to it.

    In a task or actor this opens a pdb session on a Unix socket of the
    session folder and blocks until a client attaches; in the driver it is
    the ordinary pdb on the terminal.
    """
    frame = sys._getframe().f_back
    session = _open_session(breakpoint_uuid, frame, None)
    if session is None:
        _std_pdb.Pdb().set_trace(frame)
        return
    try:
        session.set_trace(frame)
    except OSError:  # the client vanished mid-command: the task goes on
        session._detach()


def post_mortem(tb: TracebackType | None = None) -> None:
    """Debug the exception being handled (or ``tb``) after the fact, over the socket."""
    if tb is None:
        tb = sys.exc_info()[2]
    if tb is None:
        raise ValueError(
            "post_mortem() needs a traceback: call it in an except block or pass one"
        )
    session = _open_session(None, sys._getframe().f_back, tb)
    if session is None:
        _std_pdb.post_mortem(tb)
        return
    try:
        session.reset()
        session.interaction(None, tb)
    except OSError:
        pass
    finally:
        session._detach()


_post_mortem = post_mortem  # the name Ray's libraries call


def _open_session(
    breakpoint_uuid: Any, frame: FrameType | None, tb: TracebackType | None
) -> _SocketPdb | None:
    """Wait for a client on a new socket; None in a driver (use the terminal)."""
    cw = current.worker_or_none()
    if cw is None or cw.is_driver:
        return None
    if isinstance(breakpoint_uuid, bytes):
        breakpoint_uuid = breakpoint_uuid.decode()
    bp_id = str(breakpoint_uuid or uuid.uuid4().hex[:16])
    folder = ensure_private_dir(os.path.join(cw.session_dir, DEBUG_DIR))
    path = os.path.join(folder, f"{bp_id}.sock")
    record_path = os.path.join(folder, f"{bp_id}.json")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(path)  # in a 0700 folder, so nobody else can reach it meanwhile
        make_private(path)
        listener.listen(1)
        write_private(record_path, json.dumps(_record(bp_id, path, frame, tb)))
        where = f"{frame.f_code.co_filename}:{frame.f_lineno}" if frame else "?"
        print(
            f"ember.util.pdb: breakpoint {bp_id} at {where} (pid {os.getpid()}) is "
            f"waiting: run 'ember debug' on this node to attach (socket {path}).",
            file=sys.__stderr__,
            flush=True,
        )
        conn, _ = listener.accept()
    finally:
        listener.close()
        for p in (record_path, path):
            try:
                os.unlink(p)
            except FileNotFoundError:
                pass
    return _SocketPdb(conn)


def _record(
    bp_id: str, path: str, frame: FrameType | None, tb: TracebackType | None
) -> dict[str, Any]:
    import ember

    ctx = ember.get_runtime_context()
    task_id = ctx.get_task_id()
    return {
        "id": bp_id,
        "socket": path,
        "pid": os.getpid(),
        "task": _task_name(),
        "filename": frame.f_code.co_filename if frame else "",
        "lineno": frame.f_lineno if frame else 0,
        "traceback": "".join(traceback.format_tb(tb)) if tb else "",
        "timestamp": time.time(),
        "job_id": ctx.get_job_id(),
        "task_id": task_id or "",
        "actor_id": ctx.get_actor_id() or "",
        "node_id": ctx.get_node_id(),
        "worker_id": ctx.get_worker_id(),
    }


def _task_name() -> str:
    try:
        from setproctitle import getproctitle

        return getproctitle()
    except ImportError:  # pragma: no cover - a dependency
        return ""
