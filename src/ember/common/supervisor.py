"""Keeping one daemon running: start it as a child, start it again when it dies.

A head service that must outlive its own crashes (the control service, the
dashboard) runs as ``python -m ember.<daemon> --supervise ...``: that
process is a :class:`ChildSupervisor`, which starts the real daemon as its
child with the same arguments, passes the child's ready line on to whoever
started it, and, when the child dies other than by being told to stop,
starts it again after a short backoff.  Descriptors listed in ``pass_fds``
(a listening socket the supervisor holds, so a restarted dashboard serves
the same port and connections made meanwhile wait in its backlog) are
inherited by every child.

A child that keeps dying is not restarted forever: after ``MAX_RESTARTS``
restarts within ``RESTART_WINDOW_S`` the supervisor gives up and exits 1.
SIGTERM or SIGINT stops the child (SIGTERM) and then the supervisor; if the
supervisor itself is killed, the child gets SIGTERM from the kernel
(``PR_SET_PDEATHSIG``, :func:`ember.common.process.die_with_parent`).

The supervisor can also be a thread of the process that needs the daemon
(:meth:`ChildSupervisor.run_thread`: ``ember.init()``'s embedded cluster
keeps its dashboard so, and saves a process).  Imports only the standard
library and ``ember.common``: a supervisor stays small.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from types import FrameType

from ember.common.private_files import open_private_log
from ember.common.process import PARENT_ENV, DaemonStartError, read_ready_line

logger = logging.getLogger(__name__)

MAX_RESTARTS = 20
RESTART_WINDOW_S = 300.0
#: the child must serve again within this long after a restart
READY_TIMEOUT_S = 60.0
_BACKOFF_S = (0.05, 0.2, 0.5, 1.0, 2.0)


class ChildSupervisor:
    """Runs one ``python -m module argv`` child at a time; see the module docstring."""

    def __init__(
        self,
        module: str,
        what: str,
        argv: list[str],
        log_path: str,
        pass_fds: Sequence[int] = (),
        *,
        env: dict[str, str] | None = None,
        redirect_output: bool = False,
    ) -> None:
        self.module = module
        self.what = what
        self.argv = list(argv)
        self._log_path = log_path
        self._pass_fds = tuple(pass_fds)
        self._env = env
        #: send the child's stdout/stderr to ``log_path`` (else it inherits ours)
        self._redirect = redirect_output
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = False
        self._restarts: list[float] = []
        #: the ready line of the child that serves now
        self.address = ""

    @property
    def child_pid(self) -> int:
        """The pid of the current child (0 before the first start)."""
        return self._child.pid if self._child is not None else 0

    def _spawn(self) -> str:
        if self._stopping:
            raise DaemonStartError(self.what, self._log_path, "was stopped", "")
        r, w = os.pipe()
        env = dict(os.environ if self._env is None else self._env)
        env[PARENT_ENV] = str(os.getpid())
        log = open_private_log(self._log_path) if self._redirect else None
        try:
            child = self._child = subprocess.Popen(
                [sys.executable, "-m", self.module, *self.argv, "--ready-fd", str(w)],
                env=env,
                pass_fds=(w, *self._pass_fds),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        except BaseException:
            os.close(r)
            raise
        finally:
            os.close(w)
            if log is not None:
                os.close(log)
        if self._stopping:  # stop() ran while the child was being started
            child.send_signal(signal.SIGTERM)
        return read_ready_line(r, child, self.what, self._log_path, READY_TIMEOUT_S)

    def start(self) -> str:
        """Start the first child; its ready line."""
        self.address = self._spawn()
        return self.address

    def stop(self, signum: int = 0, frame: FrameType | None = None) -> None:
        """Stop the child, then return from :meth:`run` (a signal handler, or any thread)."""
        self._stopping = True
        child = self._child
        if child is not None and child.poll() is None:
            child.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        """SIGKILL the current child if it still runs (after :meth:`stop` and a wait)."""
        child = self._child
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()

    def run_thread(self) -> None:
        """:meth:`start` then :meth:`run`, in a background thread of the parent."""
        try:
            self.start()
        except DaemonStartError as exc:
            if not self._stopping:
                logger.warning("%s", exc)
            return
        code = self.run()
        if code and not self._stopping:
            logger.warning(
                "the %s is not restarted any more (exit %d)", self.what, code
            )

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
                    "the %s died %d times within %.0fs; giving up",
                    self.what,
                    len(self._restarts),
                    RESTART_WINDOW_S,
                )
                return 1
            delay = _BACKOFF_S[min(len(self._restarts) - 1, len(_BACKOFF_S) - 1)]
            logger.warning(
                "the %s (pid %d) exited with %s; restarting it in %.2fs",
                self.what,
                child.pid,
                describe_exit(code),
                delay,
            )
            time.sleep(delay)
            if self._stopping:
                return 0
            try:
                self.address = self._spawn()
            except DaemonStartError as exc:
                logger.error("the restarted %s did not serve: %s", self.what, exc)
                continue
            logger.info("the %s serves again at %s", self.what, self.address)

    def _may_restart(self) -> bool:
        now = time.monotonic()
        self._restarts = [t for t in self._restarts if now - t < RESTART_WINDOW_S]
        self._restarts.append(now)
        return len(self._restarts) <= MAX_RESTARTS


def describe_exit(code: int) -> str:
    """``"signal SIGKILL"`` or ``"code 1"`` for a child's return code."""
    if code < 0:
        try:
            return f"signal {signal.Signals(-code).name}"
        except ValueError:
            return f"signal {-code}"
    return f"code {code}"


def strip_supervise(argv: list[str]) -> list[str]:
    """The daemon's own arguments without ``--supervise`` and ``--ready-fd N``."""
    out = [a for a in argv if a != "--supervise"]
    if "--ready-fd" in out:
        i = out.index("--ready-fd")
        del out[i : i + 2]
    return out
