"""Keeps the control service running: restarts it on the same address when it dies.

``ember start --head`` runs ``python -m ember.control --supervise ...``: this
process starts the real control service as its child, passes the child's
ready line on to whoever started it, and, when the child dies other than by
being told to stop, starts it again with the same arguments on the same port
(the first start may have asked for port 0: restarts use the port it got).
The new control service reloads its state from the same storage (SQLite or
Redis), and node daemons, drivers and workers reconnect to it
(:mod:`ember.rpc.reconnecting`).

A child that keeps dying is not restarted forever: after ``MAX_RESTARTS``
restarts within ``RESTART_WINDOW_S`` the supervisor gives up and exits 1.
SIGTERM or SIGINT stops the child (SIGTERM) and then the supervisor; if the
supervisor itself is killed, the child gets SIGTERM from the kernel
(``PR_SET_PDEATHSIG``, :func:`ember.common.process.die_with_parent`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from types import FrameType

from ember.common.process import (
    PARENT_ENV,
    DaemonStartError,
    read_ready_line,
    setup_daemon_logging,
    signal_ready,
)

logger = logging.getLogger(__name__)

MAX_RESTARTS = 20
RESTART_WINDOW_S = 300.0
#: the child must serve again within this long after a restart
READY_TIMEOUT_S = 60.0
_BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)


class Supervisor:
    """Runs one control service child at a time; see the module docstring."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        self._argv = list(argv)
        self._log_path = log_path
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._restarts: list[float] = []
        self.address = ""

    def _spawn(self) -> str:
        r, w = os.pipe()
        env = dict(os.environ)
        env[PARENT_ENV] = str(os.getpid())
        try:
            self._child = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "ember.control",
                    *self._argv,
                    "--ready-fd",
                    str(w),
                ],
                env=env,
                pass_fds=(w,),
                stdin=subprocess.DEVNULL,
            )
        finally:
            os.close(w)
        return read_ready_line(
            r, self._child, "control service", self._log_path, READY_TIMEOUT_S
        )

    def start(self) -> str:
        """Start the first child; its ready line (the address it serves)."""
        self.address = self._spawn()
        port = self.address.rpartition(":")[2]
        if self.address.startswith("tcp:") and port.isdigit():
            self._pin_port(port)
        return self.address

    def _pin_port(self, port: str) -> None:
        argv = self._argv
        if "--port" in argv:
            argv[argv.index("--port") + 1] = port
        else:
            argv += ["--port", port]

    def stop(self, signum: int, frame: FrameType | None) -> None:
        """Signal handler: stop the child, then return from :meth:`run`."""
        self._stopping = True
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def run(self) -> int:
        """Watch the child until told to stop; the exit code for this process."""
        while True:
            child = self._child
            assert child is not None
            code = child.wait()
            if self._stopping:
                return 0 if code in (0, -signal.SIGTERM) else code
            if not self._may_restart():
                logger.error(
                    "the control service died %d times within %.0fs; giving up",
                    len(self._restarts),
                    RESTART_WINDOW_S,
                )
                return 1
            delay = _BACKOFF_S[min(len(self._restarts) - 1, len(_BACKOFF_S) - 1)]
            logger.warning(
                "the control service (pid %d) exited with %s; restarting it in %.2fs",
                child.pid,
                _describe(code),
                delay,
            )
            time.sleep(delay)
            if self._stopping:
                return 0
            try:
                address = self._spawn()
            except DaemonStartError as exc:
                logger.error("the restarted control service did not serve: %s", exc)
                continue
            logger.info("the control service serves again at %s", address)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
        self._restarts.append(now)
        return len(self._restarts) <= MAX_RESTARTS


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def supervise(argv: list[str], ready_fd: int, log_path: str) -> int:
    """Run the control service with ``argv`` under a :class:`Supervisor`."""
    setup_daemon_logging("control-supervisor")
    sup = Supervisor(argv, log_path)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, sup.stop)
    try:
        address = sup.start()
    except DaemonStartError as exc:
        logger.error("%s", exc)
        return 1
    signal_ready(ready_fd, address)
    return sup.run()
