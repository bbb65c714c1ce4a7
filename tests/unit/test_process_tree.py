"""kill_session ends every process of a worker's session, and never the caller's own."""

from __future__ import annotations

import os
import subprocess
import sys

import psutil
import pytest
from tests.conftest import wait_until

from ember.common.process_tree import kill_session, session_members

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="sessions are read from /proc"
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_whole_session_is_killed_even_a_member_in_another_group(tmp_path):
    pids = tmp_path / "pids"
    # The "worker": its own session; a child in its group, and one that moved to
    # a process group of its own (as a shell with job control does).
    script = (
        "import subprocess, sys\n"
        "a = subprocess.Popen(['sleep', '1000'])\n"
        "b = subprocess.Popen(['sleep', '1000'], process_group=0)\n"
        f"open({str(pids)!r}, 'w').write(f'{{a.pid}} {{b.pid}}')\n"
        "sys.stdin.read()\n"
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, start_new_session=True
    )
    try:
        assert wait_until(lambda: pids.exists() and pids.read_text().count(" ") == 1)
        a, b = (int(p) for p in pids.read_text().split())
        assert os.getpgid(b) != worker.pid  # really outside the worker's group
        assert {worker.pid, a, b} <= set(session_members(worker.pid))
        worker.kill()
        # as the fork server does: the worker is dead but not reaped yet
        assert wait_until(lambda: _gone(worker.pid))
        assert kill_session(worker.pid) >= 1
        assert wait_until(lambda: _gone(a) and _gone(b))
    finally:
        worker.kill()
        worker.wait()
    for p in (a, b):  # reparented to init (or a subreaper): not ours to reap
        assert _gone(p)


def test_the_callers_own_session_and_group_are_refused():
    assert kill_session(os.getsid(0)) == 0
    assert kill_session(os.getpgrp()) == 0
    assert kill_session(os.getpid()) == 0
    assert kill_session(1) == 0
