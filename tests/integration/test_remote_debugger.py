"""ember.util.pdb: a breakpoint in a task waits on a private socket; ember debug attaches.

The test plays the user at ``ember debug``: it lists the breakpoints through
the CLI's library functions, attaches, sends ``p x`` and ``c``, and checks
both pdb's answer and that the task then finishes.
"""

from __future__ import annotations

import io
import os
import stat

import pytest
from click.testing import CliRunner
from tests.conftest import wait_until

import ember
from ember.cli import debug as debug_cli

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def session_dir():
    if ember.is_initialized():
        ember.shutdown()
    ember.init(num_cpus=2)
    yield ember.api.init._context()["session_dir"]  # type: ignore[attr-defined]
    ember.shutdown()


def _ours(session_dir: str) -> list[dict]:
    return [
        b for b in debug_cli.breakpoints() if b["socket"].startswith(session_dir + "/")
    ]


def _wait_for_breakpoint(session_dir: str) -> dict:
    assert wait_until(lambda: _ours(session_dir), 60), "no breakpoint appeared"
    return _ours(session_dir)[0]


def test_set_trace_in_a_task_is_reached_through_ember_debug(session_dir):
    @ember.remote
    def f():
        x = 41 + 1
        ember.util.pdb.set_trace()
        return x * 2

    ref = f.remote()
    bp = _wait_for_breakpoint(session_dir)
    assert bp["filename"].endswith("test_remote_debugger.py")
    assert bp["task_id"]
    assert bp["pid"] != os.getpid()
    # private: a 0600 socket in a 0700 folder of this user
    folder = os.path.dirname(bp["socket"])
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(bp["socket"]).st_mode) == 0o600
    listed = CliRunner().invoke(debug_cli.debug, ["--list"])
    assert listed.exit_code == 0, listed.output
    assert f"{bp['filename']}:{bp['lineno']}" in listed.output

    out = io.StringIO()
    debug_cli.attach(bp, io.StringIO("p x\nc\n"), out)
    assert "42" in out.getvalue()
    assert ember.get(ref, timeout=60) == 84
    assert not os.path.exists(bp["socket"])
    assert not _ours(session_dir)


def test_breakpoint_builtin_in_an_actor_uses_the_remote_debugger(session_dir):
    @ember.remote
    class A:
        def m(self, y):
            breakpoint()
            return y + 1

    a = A.remote()
    ref = a.m.remote(10)
    bp = _wait_for_breakpoint(session_dir)
    assert bp["actor_id"]
    out = io.StringIO()
    debug_cli.attach(bp, io.StringIO("p y * 3\nc\n"), out)
    assert "30" in out.getvalue()
    assert ember.get(ref, timeout=60) == 11


def test_post_mortem_shows_the_failed_frame(session_dir):
    @ember.remote
    def g():
        try:
            z = 7
            raise ValueError(z)
        except ValueError:
            ember.util.pdb.post_mortem()
        return "went on"

    ref = g.remote()
    bp = _wait_for_breakpoint(session_dir)
    assert "raise ValueError(z)" in bp["traceback"]
    out = io.StringIO()
    debug_cli.attach(bp["socket"], io.StringIO("p z\nc\n"), out)
    assert "7" in out.getvalue()
    assert ember.get(ref, timeout=60) == "went on"


def test_a_client_that_leaves_lets_the_task_go_on(session_dir):
    @ember.remote
    def h():
        ember.util.pdb.set_trace()
        return "done"

    ref = h.remote()
    bp = _wait_for_breakpoint(session_dir)
    debug_cli.attach(bp, io.StringIO(""), io.StringIO())
    assert ember.get(ref, timeout=60) == "done"
