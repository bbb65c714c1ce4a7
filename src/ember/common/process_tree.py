"""Ending what a worker process left behind: every process of its session.

Theory of operation.  Every worker starts a session of its own (``setsid``
in the fork server's child, ``start_new_session`` for exec), so its session
id and process group id are its pid, and every process a task spawns
(``subprocess.Popen``, a shell and its pipeline, a multiprocessing pool, and
their children) inherits that session, even one that moves to a process
group of its own.  When the worker is gone, for whatever reason (a crash,
``os._exit``, SIGKILL from the daemon, a normal exit), its parent calls
:func:`kill_session` *before* reaping it: the worker's zombie still holds
the pid, so no other process can hold that id as a pid, group or session,
and the kill can never hit a stranger.  A process that calls ``setsid()``
itself leaves the tree on purpose and is not followed (as Ray's process
group cleanup).

:func:`kill_session` refuses the caller's own session and group, so a
worker that failed to start its session cannot take its daemon down with it.
"""

from __future__ import annotations

import os
import signal
import sys


def session_members(sid: int) -> list[int]:
    """The pids whose session id is ``sid`` (Linux ``/proc``; [] elsewhere)."""
    if not sys.platform.startswith("linux"):
        return []
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:  # gone meanwhile, or not ours to read
            continue
        # "pid (comm) state ppid pgrp session ...": comm may hold spaces and ')'
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 3 and int(fields[3]) == sid:
            found.append(int(name))
    return found


def kill_session(sid: int, sig: int = signal.SIGKILL) -> int:
    """Send ``sig`` to every process of the session (and group) ``sid``.

    ``sid`` is a worker's pid, which the caller has not reaped yet. Returns
    how many processes were signalled besides the group (0 when there were
    none). Never signals the caller's own session or process group.
    """
    if sid <= 1 or sid in (os.getpid(), os.getpgrp(), os.getsid(0)):
        return 0
    try:
        os.killpg(sid, sig)
    except (ProcessLookupError, PermissionError):
        pass
    count = 0
    for pid in session_members(sid):
        if pid in (sid, os.getpid()):
            continue
        try:
            os.kill(pid, sig)
            count += 1
        except (ProcessLookupError, PermissionError):
            pass
    return count
