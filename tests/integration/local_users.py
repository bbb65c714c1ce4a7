"""Helpers for security tests: act as another local user, and look at processes.

:func:`as_user` forks a child that drops to another uid (we run as root, as
CI does: "nobody", 65534) and runs a function there; the result comes back
pickled through a pipe.  :class:`Intruder` is such a child that stays alive:
it prepares a trap, reports ready, then listens for a connection until told
to stop.  The ``/proc`` readers list a process's listening TCP and unix
sockets and its command line.
"""

from __future__ import annotations

import os
import pickle
import select
import socket
from collections.abc import Callable
from typing import Any

import psutil
import pytest

NOBODY = 65534


def _drop_to(uid: int) -> None:
    os.setgroups([])
    os.setgid(uid)
    os.setuid(uid)


def _read_all(fd: int) -> bytes:
    data = b""
    while chunk := os.read(fd, 65536):
        data += chunk
    return data


def as_user(uid: int, fn: Callable[..., Any], *args: Any) -> Any:
    """``fn(*args)`` run by a child process as ``uid``; skips if we cannot setuid."""
    if os.geteuid() != 0:
        pytest.skip("needs root to act as another local user")
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: no pytest, no ember calls, just syscalls
        try:
            os.close(r)
            try:
                _drop_to(uid)
            except OSError as exc:
                out = ("nosetuid", repr(exc))
            else:
                out = ("ok", fn(*args))
            data = pickle.dumps(out)
        except BaseException as exc:
            data = pickle.dumps(("err", repr(exc)))
        os.write(w, data)
        os._exit(0)
    os.close(w)
    try:
        data = _read_all(r)
    finally:
        os.close(r)
        os.waitpid(pid, 0)
    status, value = pickle.loads(data)
    if status == "nosetuid":
        pytest.skip(f"cannot act as uid {uid} here: {value}")
    assert status == "ok", value
    return value


class Intruder:
    """Another local user's process: plants ``trap(folder)`` and listens on TCP.

    ``trap`` runs as that user with the port of its listener and returns what
    to report at the end; :meth:`finish` returns ``(connected, report)``.
    """

    def __init__(self, uid: int, trap: Callable[[int], Any]) -> None:
        if os.geteuid() != 0:
            pytest.skip("needs root to act as another local user")
        ready_r, ready_w = os.pipe()
        self._stop_r, self._stop_w = os.pipe()
        self._out_r, out_w = os.pipe()
        self.pid = os.fork()
        if self.pid == 0:
            os.close(ready_r)
            os.close(self._stop_w)
            os.close(self._out_r)
            self._child(uid, trap, ready_w, out_w)
        os.close(ready_w)
        os.close(self._stop_r)
        os.close(out_w)
        line = _read_all(ready_r).decode()
        os.close(ready_r)
        if line.startswith("nosetuid"):
            self.finish()
            pytest.skip(f"cannot act as uid {uid} here: {line}")
        assert line.startswith("ready"), line

    def _child(
        self, uid: int, trap: Callable[[int], Any], ready_w: int, out_w: int
    ) -> None:
        try:
            try:
                _drop_to(uid)
            except OSError as exc:
                os.write(ready_w, f"nosetuid {exc!r}".encode())
                os._exit(0)
            listener = socket.create_server(("127.0.0.1", 0))
            report = trap(listener.getsockname()[1])
            os.write(ready_w, b"ready")
            os.close(ready_w)
            connected = False
            while True:
                readable, _, _ = select.select([listener, self._stop_r], [], [])
                if listener in readable:
                    conn, _ = listener.accept()
                    conn.close()
                    connected = True
                if self._stop_r in readable:
                    break
            if callable(report):
                report = report()
            os.write(out_w, pickle.dumps((connected, report)))
        except BaseException as exc:
            os.write(ready_w, f"error {exc!r}".encode())
        os._exit(0)

    def finish(self) -> tuple[bool, Any]:
        os.close(self._stop_w)
        data = _read_all(self._out_r)
        os.close(self._out_r)
        os.waitpid(self.pid, 0)
        return pickle.loads(data) if data else (False, None)


# -- processes ------------------------------------------------------------------------
def _socket_inodes(pid: int) -> set[int]:
    out = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            link = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if link.startswith("socket:["):
            out.add(int(link[8:-1]))
    return out


def listening_unix_sockets(pid: int) -> list[str]:
    """Paths of the unix sockets ``pid`` listens on ("" for unnamed ones)."""
    inodes = _socket_inodes(pid)
    out = []
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Num RefCount Protocol Flags Type St Inode [Path]; 0x10000: listening
            if int(parts[6]) in inodes and int(parts[3], 16) & 0x10000:
                out.append(parts[7] if len(parts) > 7 else "")
    return out


def listening_tcp(pid: int) -> list[str]:
    """``ip:port`` of every TCP socket ``pid`` listens on."""
    try:
        conns = psutil.Process(pid).net_connections(kind="inet")
    except psutil.NoSuchProcess:
        return []
    return [
        f"{c.laddr.ip}:{c.laddr.port}" for c in conns if c.status == psutil.CONN_LISTEN
    ]


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def tree(pid: int) -> list[psutil.Process]:
    """``pid`` and its live descendants."""
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]
