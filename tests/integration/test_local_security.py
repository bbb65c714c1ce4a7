"""The embedded cluster of ``ember.init()`` against other users of the same machine.

Every test runs with a TMPDIR that, like /tmp, every user may write to (mode
1777) and a HOME others may traverse (0755), so that what protects ember's
files is ember's own folders and modes.  Other users are played by a child
process running as "nobody" (we run as root, as CI does; skipped otherwise).
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import stat
import tempfile

import numpy as np
import psutil
import pytest
from tests.integration.local_users import (
    NOBODY,
    Intruder,
    as_user,
    cmdline,
    listening_tcp,
    listening_unix_sockets,
    tree,
)

import ember
from ember.api import init as init_mod
from ember.common import session

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def machine(monkeypatch):
    """A shared TMPDIR (1777, like /tmp) and a HOME others may traverse."""
    root = tempfile.mkdtemp(prefix="ems", dir="/tmp")
    os.chmod(root, 0o1777)
    home = os.path.join(root, "home")
    os.mkdir(home)
    os.chmod(home, 0o755)
    monkeypatch.setenv("TMPDIR", root)
    monkeypatch.setattr(tempfile, "tempdir", root)
    monkeypatch.setenv("HOME", home)
    for var in ("XDG_RUNTIME_DIR", "EMBER_AUTH_TOKEN", "EMBER_ADDRESS", "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    yield root
    if ember.is_initialized():
        ember.shutdown()
    shutil.rmtree(root, ignore_errors=True)


def run_tasks_and_actors() -> None:
    @ember.remote
    def square(x):
        print("a line for the worker's log")
        return x * x

    @ember.remote
    class Counter:
        def __init__(self):
            self.n = 0

        def incr(self, arr):
            self.n += 1
            return self.n, float(arr.sum())

    big = ember.put(np.ones(500_000))  # stored in the shared-memory arena
    assert ember.get([square.remote(i) for i in range(6)], timeout=60) == [
        i * i for i in range(6)
    ]
    c = Counter.remote()
    assert ember.get(c.incr.remote(big), timeout=60) == (1, 500_000.0)


def session_files() -> tuple[list[str], list[str], list[str]]:
    """(folders, files, sockets) of this user's runtime folder, plus the arenas."""
    folders, files, sockets = [], [], []
    for dirpath, _dirnames, filenames in os.walk(session.root_dir()):
        folders.append(dirpath)
        for name in filenames:
            path = os.path.join(dirpath, name)
            kind = stat.S_IFMT(os.lstat(path).st_mode)
            (sockets if kind == stat.S_IFSOCK else files).append(path)
    for s in glob.glob(os.path.join(session.root_dir(), "session_*")):
        files += glob.glob(f"/dev/shm/ember-{os.path.basename(s)}-*")
    return folders, files, sockets


def test_every_file_and_folder_of_a_session_is_private(machine):
    ember.init(num_cpus=2, configure_logging=False)
    run_tasks_and_actors()
    init_mod.publish_local_cluster()
    folders, files, sockets = session_files()
    names = {os.path.basename(f) for f in files}
    assert {"control.log", "node.log", "current_cluster.json"} <= names
    assert any(n.startswith("worker-") for n in names)
    # The arena: in /dev/shm, or in <session>/objects/ when /dev/shm is too small.
    assert any(os.path.basename(f).startswith("ember-session_") for f in files)
    assert len(sockets) >= 4  # control, node, driver, workers
    wrong = [
        f"{oct(stat.S_IMODE(os.lstat(p).st_mode))} {p}"
        for p in folders
        if stat.S_IMODE(os.lstat(p).st_mode) != 0o700
    ]
    wrong += [
        f"{oct(stat.S_IMODE(os.lstat(p).st_mode))} {p}"
        for p in files
        if stat.S_IMODE(os.lstat(p).st_mode) != 0o600
    ]
    wrong += [
        f"{oct(stat.S_IMODE(os.lstat(p).st_mode))} {p}"
        for p in sockets
        if stat.S_IMODE(os.lstat(p).st_mode) & 0o077
    ]
    assert not wrong, "\n".join(wrong)
    assert os.path.basename(session.root_dir()) == f"ember-{os.geteuid()}"


def test_the_embedded_cluster_listens_on_no_tcp_port(machine):
    ctx = ember.init(
        num_cpus=2, configure_logging=False, include_dashboard=True, dashboard_port=0
    )
    run_tasks_and_actors()
    procs = tree(os.getpid())
    assert len(procs) >= 4  # driver, control service, node daemon, fork server
    listening = {p.pid: listening_tcp(p.pid) for p in procs}
    # but its dashboard's (the driver holds the socket, the dashboard serves it),
    # on 127.0.0.1 and behind the token (as Ray's, on 8265)
    assert ctx.dashboard_url.startswith("127.0.0.1:")
    others = {
        pid: [a for a in ports if a != ctx.dashboard_url]
        for pid, ports in listening.items()
    }
    assert not any(others.values()), {
        cmdline(pid)[:80]: ports for pid, ports in others.items() if ports
    }


def _fork_server() -> psutil.Process:
    (node,) = [p for p in tree(os.getpid()) if "ember.node" in cmdline(p.pid)]
    (fs,) = [c for c in node.children() if "ember.worker.forkserver" in cmdline(c.pid)]
    return fs


def test_the_fork_server_listens_nowhere_and_holds_no_token(machine):
    ember.init(num_cpus=1, configure_logging=False)
    run_tasks_and_actors()
    fs = _fork_server()
    assert listening_unix_sockets(fs.pid) == []
    assert listening_tcp(fs.pid) == []
    assert session.TOKEN_ENV not in fs.environ()
    sockets = os.path.join(init_mod._cluster.session_dir, "sockets")
    assert not [n for n in os.listdir(sockets) if n.startswith("fork")]


def test_no_process_of_the_embedded_cluster_has_the_token_in_its_argv(machine):
    ember.init(num_cpus=2, configure_logging=False)
    run_tasks_and_actors()
    token = init_mod._cluster.token
    procs = tree(os.getpid())
    assert len(procs) >= 5  # driver, control, node, fork server, workers
    leaks = [cmdline(p.pid)[:100] for p in procs if token in cmdline(p.pid)]
    assert not leaks


def _probe(folders: list[str], files: list[str], sockets: list[str]) -> list[str]:
    """What another user manages to do with root's session (should be nothing)."""
    done = []
    for d in folders:
        try:
            os.listdir(d)
            done.append(f"listed {d}")
        except PermissionError:
            pass
        try:
            with open(os.path.join(d, "planted"), "w"):
                done.append(f"created a file in {d}")
        except PermissionError:
            pass
    for path in files:
        try:
            with open(path, "rb") as f:
                f.read(1)
            done.append(f"read {path}")
        except PermissionError:
            pass
    for path in sockets:
        s = socket.socket(socket.AF_UNIX)
        try:
            s.connect(path)
            done.append(f"connected to {path}")
        except PermissionError:
            pass
        finally:
            s.close()
    return done


def test_another_user_can_read_or_plant_nothing_in_a_session(machine):
    ember.init(num_cpus=1, configure_logging=False)
    run_tasks_and_actors()
    init_mod.publish_local_cluster()
    folders, files, sockets = session_files()
    assert session.cluster_record_path() in files
    assert as_user(NOBODY, _probe, folders, files, sockets) == []


def init_and_publish() -> None:
    ember.init(num_cpus=1, configure_logging=False)
    init_mod.publish_local_cluster()


def _plant_folder(path: str) -> None:
    os.makedirs(path, exist_ok=True)
    os.chmod(path, 0o777)


def test_a_runtime_folder_planted_by_another_user_is_refused(machine):
    record = session.cluster_record_path()
    folder = os.path.dirname(record)
    bait = os.path.join(folder, "bait")

    def trap(port: int):
        _plant_folder(folder)
        with open(bait, "w"):
            pass
        os.chmod(bait, 0o666)
        # Temporary names a writer of the record might use, all leading to the bait.
        for name in (f"{record}.{os.getppid()}.tmp", f"{record}.tmp"):
            os.symlink(bait, name)
        return lambda: open(bait).read()

    intruder = Intruder(NOBODY, trap)
    try:
        with pytest.raises(PermissionError) as e:
            init_and_publish()
    finally:
        if ember.is_initialized():
            ember.shutdown()
        connected, bait_text = intruder.finish()
    assert folder in str(e.value)
    assert f"uid {NOBODY}" in str(e.value)
    assert bait_text == ""  # the token never reached the other user's file
    assert not connected


def test_a_swapped_cluster_record_cannot_redirect_init_auto(machine):
    record = session.cluster_record_path()

    def trap(port: int) -> None:
        _plant_folder(os.path.dirname(record))
        with open(record, "w") as f:
            json.dump(
                {
                    "control_address": f"tcp:127.0.0.1:{port}",
                    "token": "the-intruder's",
                    "session_dir": os.path.dirname(record),
                    "pid": os.getpid(),
                },
                f,
            )

    intruder = Intruder(NOBODY, trap)
    try:
        with pytest.raises(PermissionError) as e:
            ember.init(address="auto", configure_logging=False)
    finally:
        if ember.is_initialized():
            ember.shutdown()
        connected, _ = intruder.finish()
    assert not connected, "init(address='auto') connected to the other user's process"
    assert os.path.dirname(record) in str(e.value)
