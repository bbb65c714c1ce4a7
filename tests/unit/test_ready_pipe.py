"""common/process.read_ready_line: a daemon's ready line, or why it never came."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ember.common.process import DaemonStartError, read_ready_line


def start(code: str, log: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``python -c code`` with the ready pipe's write end as ``sys.argv[1]``."""
    r, w = os.pipe()
    with open(log, "ab") as out:
        p = subprocess.Popen(
            [sys.executable, "-c", code, str(w)],
            pass_fds=(w,),
            stdout=out,
            stderr=out,
        )
    os.close(w)
    return p, r


def test_ready_line_is_returned(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    code = "import os, sys; os.write(int(sys.argv[1]), b'tcp:1.2.3.4:5 abc\\n')"
    p, r = start(code, log)
    assert read_ready_line(r, p, "test daemon", str(log), 30) == "tcp:1.2.3.4:5 abc"
    assert p.wait(30) == 0


def test_exit_before_ready_raises_with_the_log_tail(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    p, r = start("import sys; print('bad config'); sys.exit(3)", log)
    with pytest.raises(DaemonStartError) as info:
        read_ready_line(r, p, "test daemon", str(log), 30)
    err = info.value
    assert "the test daemon exited during start (exit code 3)" in str(err)
    assert str(log) in str(err)
    assert "bad config" in err.log_tail
    assert isinstance(err, RuntimeError)


def test_no_line_in_time_raises(tmp_path: Path) -> None:
    log = tmp_path / "d.log"
    p, r = start("import signal; signal.pause()", log)  # never ready
    try:
        with pytest.raises(DaemonStartError, match="did not start within 0s"):
            read_ready_line(r, p, "test daemon", str(log), 0)
    finally:
        p.kill()
        p.wait(30)
