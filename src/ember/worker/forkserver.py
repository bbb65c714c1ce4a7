"""``python -m ember.worker.forkserver``: fork pre-imported workers in milliseconds.

A fresh interpreter that imports ember's runtime costs a few hundred
milliseconds and tens of MB; a fork of a process that already imported it
costs a few milliseconds, and shares those pages copy-on-write.

Protocol (one connection from the node daemon, on a unix socket, JSON lines)::

    daemon -> {"argv": [...], "env": {...}, "log": path}     spawn a worker
    server -> {"pid": N}                                     its pid
    server -> {"exited": N, "code": C}                        when it exits

The server reaps its children and reports their exit codes, since the daemon
is not their parent.  It exits when the daemon's connection closes, killing
nothing: workers exit on their own when their node daemon goes away.
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

ACCEPT_TIMEOUT_S = 60.0


def _preload() -> None:
    # Everything a worker imports before its first task.
    import ember.worker.main  # noqa: F401


def _die_with_parent(sig: int) -> None:
    """Get ``sig`` when our parent dies (Linux), so nothing outlives its node daemon."""
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, sig)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _child(
    req: dict[str, object], listener: socket.socket, conn: socket.socket
) -> None:
    listener.close()
    conn.close()
    _die_with_parent(signal.SIGKILL)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    fd = os.open(str(req["log"]), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
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


def serve(path: str, ready_fd: int) -> None:
    parent = os.getppid()
    _die_with_parent(signal.SIGKILL)
    if os.getppid() != parent:  # the node daemon died before prctl took effect
        return
    _preload()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    if ready_fd >= 0:
        os.write(ready_fd, b"ready\n")
        os.close(ready_fd)
    listener.settimeout(ACCEPT_TIMEOUT_S)
    try:
        conn, _ = listener.accept()
    except TimeoutError:
        return  # the node daemon never came: do not linger
    conn.settimeout(None)
    rfd, wfd = os.pipe()
    os.set_blocking(wfd, False)
    signal.set_wakeup_fd(wfd)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    sel = selectors.DefaultSelector()
    sel.register(conn, selectors.EVENT_READ)
    sel.register(rfd, selectors.EVENT_READ)
    buf = b""
    out = conn.makefile("wb", buffering=0)
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
                        _child(req, listener, conn)
                    out.write(json.dumps({"pid": pid}).encode() + b"\n")
            else:
                os.read(rfd, 4096)
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            out.write(
                json.dumps(
                    {"exited": pid, "code": os.waitstatus_to_exitcode(status)}
                ).encode()
                + b"\n"
            )


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.worker.forkserver")
    p.add_argument("--socket", required=True)
    p.add_argument("--ready-fd", type=int, default=-1)
    a = p.parse_args()
    try:
        serve(a.socket, a.ready_fd)
    finally:
        try:
            os.unlink(a.socket)
        except FileNotFoundError:
            pass


if __name__ == "__main__":
    main()
