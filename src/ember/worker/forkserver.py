"""``python -m ember.worker.forkserver``: fork pre-imported workers in milliseconds.

A fresh interpreter that imports ember's runtime costs a few hundred
milliseconds and tens of MB; a fork of a process that already imported it
costs a few milliseconds, and shares those pages copy-on-write.

Protocol (JSON lines over one end of a socketpair the node daemon made and
passed down as ``--fd``; nothing listens, so no other process can connect,
and the connection needs no handshake: only the daemon holds the other end)::

    server -> {"ready": true}                                preloaded, serving
    daemon -> {"argv": [...], "env": {...}, "log": path}     spawn a worker
    server -> {"pid": N}                                     its pid
    server -> {"exited": N, "code": C}                        when it exits

The server reaps its children and reports their exit codes, since the daemon
is not their parent.  Each worker starts a session of its own; when one
exits, the server ends every process left in that session (what its tasks
spawned) *before* reaping it (:mod:`ember.common.process_tree`), so a killed
or crashed worker leaves nothing running.  (It is not a child subreaper:
with it, tests/integration/test_head_restart.py failed every time (that test
is flaky on main too); not understood yet: docs/seams/procs.md.)  It exits when the daemon's end closes, killing nothing: workers exit on
their own when their node daemon goes away.  Worker logs are opened 0600
(:func:`ember.common.private_files.open_private_log`).
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import selectors
import signal
import socket
import sys

from ember.common import gc_tuning
from ember.common.log_names import err_path
from ember.common.private_files import open_private_log
from ember.common.process_tree import kill_session

PR_SET_PDEATHSIG = 1


def _preload() -> None:
    # Everything a worker imports before its first task.
    import ember.worker.main  # noqa: F401


def _prctl(option: int, value: int) -> None:
    """``prctl(option, value)`` on Linux; nothing elsewhere."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(option, value)
    except OSError:
        pass


def _die_with_parent(sig: int) -> None:
    """Get ``sig`` when our parent dies (Linux), so nothing outlives its node daemon."""
    _prctl(PR_SET_PDEATHSIG, sig)


def _child(req: dict[str, object], conn: socket.socket) -> None:
    conn.close()
    os.setsid()  # the worker's session: everything its tasks spawn (process_tree)
    _die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    out = str(req["log"])
    for path, target in ((out, 1), (err_path(out), 2)):
        fd = open_private_log(path)
        os.dup2(fd, target)
        os.close(fd)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in dict(req["env"]).items()})  # type: ignore[call-overload]
    sys.argv = ["ember.worker", *[str(a) for a in req["argv"]]]  # type: ignore[attr-defined]
    code = 0
    try:
        from ember.worker.__main__ import main

        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001  (report anything, then exit)
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        os._exit(code)


def serve(fd: int) -> None:
    """Serve the daemon on the inherited socket ``fd`` until it closes."""
    conn = socket.socket(fileno=fd)
    parent = os.getppid()
    _die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # the node daemon died before prctl took effect
        return
    _preload()
    gc_tuning.tune()  # the workers forked from here share the frozen imports
    conn.setblocking(True)
    conn.sendall(b'{"ready": true}\n')
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ)
    sel.register(rfd, selectors.EVENT_READ)
    buf = b""
    out = conn.makefile("wb", buffering=0)
    workers: set[int] = set()
    while True:
        for key, _ in sel.select():
            if key.fileobj is conn:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    req = json.loads(line)
                    pid = os.fork()
                    if pid == 0:
                        _child(req, conn)
                    workers.add(pid)
                    out.write(json.dumps({"pid": pid}).encode() + b"\n")
            else:
                os.read(rfd, 4096)
        for pid, code in _reap(workers):
            out.write(json.dumps({"exited": pid, "code": code}).encode() + b"\n")


def _reap(workers: set[int]) -> list[tuple[int, int]]:
    """Reap every exited child; ``(pid, exit code)`` of the workers among them.

    A worker's session is ended before the worker is reaped (its zombie keeps
    the pid, so the session id cannot have been reused). Other children are
    would be orphans reparented to us: reaped, not reported.
    """
    exits = []
    while True:
        try:
            info = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            break
        if info is None or info.si_pid == 0:
            break
        pid = info.si_pid
        if pid in workers:
            kill_session(pid)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:
            break  # never spin on a child we cannot reap
        if pid in workers:
            workers.discard(pid)
            exits.append((pid, os.waitstatus_to_exitcode(status)))
    return exits


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.worker.forkserver")
    p.add_argument("--fd", type=int, required=True, help="the inherited socket")
    a = p.parse_args()
    serve(a.fd)


if __name__ == "__main__":
    main()
