"""Helpers for daemons: readiness pipes, tokens from the environment, logging."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import sys

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


def setup_daemon_logging(name: str, level: int = logging.INFO) -> None:
    logging.basicConfig(
        level=level,
        stream=sys.stderr,
        format=f"%(asctime)s %(levelname)s {name} %(name)s: %(message)s",
    )
