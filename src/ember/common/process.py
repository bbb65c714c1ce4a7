"""Helpers for daemons: readiness pipes, tokens from the environment, logging.

A parent starts a daemon with the write end of a pipe (``--ready-fd``); the
daemon writes one line when it serves (:func:`signal_ready`) and the parent
reads it with :func:`read_ready_line`, which turns an exit or a stall before
that line into a :class:`DaemonStartError` carrying the log's tail.
"""

from __future__ import annotations

import ctypes
import logging
import os
import select
import signal
import subprocess
import sys
import time
from typing import Any

from ember.common.log_rotation import StdRotator, process_rotator

TOKEN_ENV = "EMBER_AUTH_TOKEN"
PARENT_ENV = "EMBER_DIE_WITH_PARENT"


def token_from_env() -> bytes:
    """The cluster token passed by the parent (``EMBER_AUTH_TOKEN``)."""
    raw = os.environ.get(TOKEN_ENV, "")
    if not raw:
        raise SystemExit(f"{TOKEN_ENV} is not set: daemons need the cluster token")
    return raw.encode()


def signal_ready(fd: int, message: str) -> None:
    """Tell the parent we are serving (one line on an inherited pipe)."""
    if fd < 0:
        return
    os.write(fd, (message + "\n").encode())
    os.close(fd)


class DaemonStartError(RuntimeError):
    """A daemon exited or stalled before it said it was ready."""

    def __init__(self, what: str, log_path: str, detail: str, log_tail: str) -> None:
        super().__init__(f"the {what} {detail}; see {log_path}")
        self.what = what
        self.log_path = log_path
        self.detail = detail
        self.log_tail = log_tail

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.what, self.log_path, self.detail, self.log_tail))


def log_tail(path: str, limit: int = 3000) -> str:
    """The last ``limit`` characters of a log file ("" if it cannot be read)."""
    try:
        with open(path, errors="replace") as f:
            return f.read()[-limit:]
    except OSError:
        return ""


def read_ready_line(
    fd: int,
    proc: subprocess.Popen[bytes],
    what: str,
    log_path: str,
    timeout_s: float,
) -> str:
    """The line the daemon ``proc`` writes on its ready pipe ``fd`` (closed here).

    Raises:
        DaemonStartError: the pipe closed (the daemon exited) or ``timeout_s``
            passed before a whole line arrived.
    """
    deadline = time.monotonic() + timeout_s
    data = b""
    try:
        while b"\n" not in data:
            left = deadline - time.monotonic()
            if left <= 0:
                raise DaemonStartError(
                    what,
                    log_path,
                    f"did not start within {timeout_s:.0f}s",
                    log_tail(log_path),
                )
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    break
                data += chunk
    finally:
        os.close(fd)
    if b"\n" not in data:
        try:
            code = proc.wait(5)
        except subprocess.TimeoutExpired:
            code = None
        raise DaemonStartError(
            what,
            log_path,
            f"exited during start (exit code {code})",
            log_tail(log_path),
        )
    return data.decode().strip()


def die_with_parent() -> None:
    """If ``EMBER_DIE_WITH_PARENT`` is set, get SIGTERM when the parent dies (Linux)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, int(signal.SIGTERM))  # PR_SET_PDEATHSIG
    except OSError:
        return
    if os.getppid() != int(parent):  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


class _RotateFirst(logging.Filter):
    """Rotates the log file (stdout/stderr) at its size limit before a record is written."""

    def __init__(self, rotator: StdRotator) -> None:
        super().__init__()
        self._rotator = rotator

    def filter(self, record: logging.LogRecord) -> bool:
        self._rotator.check()
        return True


def setup_daemon_logging(name: str, level: int = logging.INFO) -> None:
    """Log records to stderr, which the parent pointed at ``<session>/logs/<name>.log``.

    That file (and stdout, when it is the same or another file) is rotated at
    its size limit (:mod:`ember.common.log_rotation`).
    """
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s",
    )
    rotator = process_rotator()
    for fd in (1, 2):
        rotator.watch(fd)
    if rotator.paths and rotator.settings.enabled:
        for handler in logging.getLogger().handlers:
            handler.addFilter(_RotateFirst(rotator))
