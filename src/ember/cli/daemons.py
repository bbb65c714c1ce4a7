"""Starting daemons as processes, waiting until they serve, and stopping them.

Used by ``ember start``/``ember stop`` (detached daemons in their own session)
and by :mod:`ember.cluster_utils` (children that die with the test process).
Daemons are started as ``python -m ember.<daemon>`` and never imported here.
"""

from __future__ import annotations

import glob
import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import psutil

from ember.common.private_files import ensure_private_dir, open_private_log
from ember.common.process import (
    PARENT_ENV,
    TOKEN_ENV,
    DaemonStartError as DaemonStartError,
    read_ready_line,
)

READY_TIMEOUT_S = 30.0
STOP_GRACE_S = 10.0


@dataclass
class Daemon:
    """A started daemon: its process, what it said when ready, and its log."""

    name: str
    proc: subprocess.Popen[bytes]
    log_path: str
    ready_line: str = ""

    def record(self) -> dict[str, object]:
        """What ``ember stop`` needs to find this process again (pid + start time)."""
        try:
            created = psutil.Process(self.proc.pid).create_time()
        except psutil.NoSuchProcess:
            created = 0.0
        return {"name": self.name, "pid": self.proc.pid, "create_time": created}


def daemon_env(token: str, *, die_with_parent: bool) -> dict[str, str]:
    env = dict(os.environ)
    env[TOKEN_ENV] = token
    if die_with_parent:
        env[PARENT_ENV] = str(os.getpid())
    else:
        env.pop(PARENT_ENV, None)
    return env


def spawn(
    name: str,
    module: str,
    args: list[str],
    env: dict[str, str],
    log_path: str,
    *,
    detached: bool,
) -> tuple[Daemon, int]:
    """Start ``python -m module args --ready-fd W``; return it and the pipe's read end."""
    r, w = os.pipe()
    ensure_private_dir(os.path.dirname(log_path))
    log = open_private_log(log_path)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args, "--ready-fd", str(w)],
            env=env,
            pass_fds=(w,),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=detached,
        )
    finally:
        os.close(log)
        os.close(w)
    return Daemon(name, proc, log_path), r


def wait_ready(daemon: Daemon, r: int, timeout_s: float = READY_TIMEOUT_S) -> str:
    """The daemon's ready line; raises :class:`DaemonStartError` if it exits first."""
    daemon.ready_line = read_ready_line(
        r, daemon.proc, daemon.name, daemon.log_path, timeout_s
    )
    return daemon.ready_line


def _same_process(rec: dict[str, object]) -> psutil.Process | None:
    """The recorded process if it still runs (same pid *and* start time)."""
    try:
        p = psutil.Process(int(rec["pid"]))  # type: ignore[call-overload]
        if abs(p.create_time() - float(rec["create_time"])) > 0.01:  # type: ignore[arg-type]
            return None  # the pid was reused by an unrelated process
        if p.status() == psutil.STATUS_ZOMBIE:
            return None
    except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
        return None
    return p


def running(records: list[dict[str, object]]) -> bool:
    """Whether any of the recorded daemons still runs."""
    return any(_same_process(rec) is not None for rec in records)


def stop_processes(
    records: list[dict[str, object]], *, force: bool, grace_s: float = STOP_GRACE_S
) -> list[dict[str, object]]:
    """SIGTERM (SIGKILL if ``force``) the recorded daemons and what they started.

    Waits up to ``grace_s``; whatever still runs then is killed.  Returns the
    records of the daemons that were running.
    """
    daemons: list[psutil.Process] = []
    descendants: list[psutil.Process] = []
    stopped = []
    for rec in records:
        p = _same_process(rec)
        if p is None:
            continue
        stopped.append(rec)
        daemons.append(p)
        try:
            descendants.extend(p.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    # A node daemon stops its workers itself on SIGTERM; SIGKILL reaches everyone.
    targets = daemons + descendants if force else daemons
    for p in targets:
        try:
            p.send_signal(signal.SIGKILL if force else signal.SIGTERM)
        except psutil.NoSuchProcess:
            pass
    procs = daemons + descendants
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
    return stopped


def stop_session_daemons(
    records: list[dict[str, object]], *, force: bool, grace_s: float = STOP_GRACE_S
) -> list[dict[str, object]]:
    """:func:`stop_processes` for one session: its control service first.

    A node daemon stopped first would report its actors dead, and the control
    service would forget the detached ones it keeps for its next start.
    """
    running_now = [r for r in records if _same_process(r) is not None]
    first = [r for r in running_now if r.get("name") == "control service"]
    stop_processes(first, force=force, grace_s=grace_s)
    # The node daemons may stop by themselves now (their control connection closed).
    stop_processes(
        [r for r in running_now if r not in first], force=force, grace_s=grace_s
    )
    return running_now


def remove_session_leftovers(session_dir: str) -> None:
    """Sockets and shared-memory arenas a killed daemon could not remove itself."""
    name = os.path.basename(session_dir.rstrip("/"))
    leftovers = glob.glob(f"/dev/shm/ember-{name}-*")
    leftovers += glob.glob(os.path.join(session_dir, "objects", f"ember-{name}-*"))
    leftovers += glob.glob(os.path.join(session_dir, "sockets", "*"))
    for path in leftovers:
        try:
            os.unlink(path)
        except OSError:
            pass
