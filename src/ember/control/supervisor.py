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
import signal

from ember.common.process import DaemonStartError, setup_daemon_logging, signal_ready
from ember.common.supervisor import (
    MAX_RESTARTS as MAX_RESTARTS,
    RESTART_WINDOW_S as RESTART_WINDOW_S,
    ChildSupervisor,
)

logger = logging.getLogger(__name__)


class Supervisor(ChildSupervisor):
    """Runs one control service child at a time; see the module docstring."""

    def __init__(self, argv: list[str], log_path: str) -> None:
        super().__init__("ember.control", "control service", argv, log_path)

    def start(self) -> str:
        """Start the first child; its ready line (the address it serves)."""
        address = super().start()
        port = address.rpartition(":")[2]
        if address.startswith("tcp:") and port.isdigit():
            self._pin_port(port)
        return address

    def _pin_port(self, port: str) -> None:
        argv = self.argv
        if "--port" in argv:
            argv[argv.index("--port") + 1] = port
        else:
            argv += ["--port", port]


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
