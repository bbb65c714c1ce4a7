"""Clusters started with ``ember start``: binding, tokens and the modes of their files."""

from __future__ import annotations

import os
import stat

import psutil
import pytest
from tests.cli.clitools import STORE, _recorded_pids, ember_cli, start_head
from tests.integration.local_users import cmdline, listening_tcp

import ember
from ember.common import session

pytestmark = pytest.mark.multiprocess


def _run_a_task_and_an_actor() -> None:
    @ember.remote
    def inc(x):
        return x + 1

    @ember.remote
    class Box:
        def get(self):
            return "ok"

    assert ember.get(inc.remote(1), timeout=60) == 2
    assert ember.get(Box.remote().get.remote(), timeout=60) == "ok"


def _cluster_pids() -> set[int]:
    """The recorded daemons, what they started, and this driver."""
    return _recorded_pids() | {os.getpid()}


def join(address: str, *extra: str, env: dict[str, str] | None = None):
    return ember_cli(
        "start", f"--address={address}", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE, *extra, env=env,
    )  # fmt: skip


def test_a_head_on_127_0_0_1_listens_only_there(home):
    address = start_head(1)
    assert join(address).returncode == 0
    ember.init(address="auto", configure_logging=False)
    try:
        _run_a_task_and_an_actor()
        listening = {pid: listening_tcp(pid) for pid in _cluster_pids()}
    finally:
        ember.shutdown()
    ports = [a for addrs in listening.values() for a in addrs]
    assert address in ports  # the control service
    assert len(ports) >= 5  # control, 2 nodes, workers, the driver
    wide = {cmdline(p)[:70]: a for p, a in listening.items() if a}
    assert all(a.startswith("127.0.0.1:") for a in ports), wide


def test_listen_address_opens_the_control_service_to_every_interface(home):
    address = start_head(1, "--listen-address", "0.0.0.0")
    port = address.rpartition(":")[2]
    rec = session.read_cluster_record()
    assert rec is not None
    # The recorded pid is the control service's supervisor; its child listens.
    pids = [rec["pid"], *(c.pid for c in psutil.Process(rec["pid"]).children())]
    assert any(f"0.0.0.0:{port}" in listening_tcp(p) for p in pids)
    assert ember_cli("status").returncode == 0


def test_tokens_never_travel_on_a_command_line(home):
    out = ember_cli(
        "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    address = str(session.read_cluster_record()["control_address"])
    token_file = session.token_path(address)
    with open(token_file) as f:
        token = f.read().strip()
    # Only the dashboard's link carries it (once, as Jupyter's), never a command.
    shown_at = [line for line in out.stdout.splitlines() if token in line]
    assert len(shown_at) <= 1
    assert all(f"/?token={token}" in line for line in shown_at), shown_at
    shown = "~/" + os.path.relpath(token_file, os.path.expanduser("~"))
    assert f"--token-file {shown}" in out.stdout

    # A machine with the token file copied elsewhere, then one with the variable.
    other = os.path.join(home, "other")
    os.makedirs(other)
    copied = os.path.join(other, "token")
    with open(token_file) as src, open(copied, "w") as dst:
        dst.write(src.read())
    other_env = {**os.environ, "HOME": other, "TMPDIR": other}
    hostport = address.removeprefix("tcp:")
    try:
        joined = join(hostport, "--token-file", copied, env=other_env)
        assert joined.returncode == 0, joined.stderr
        env = {**os.environ, session.TOKEN_ENV: token}
        assert join(hostport, env=env).returncode == 0
        warned = ember_cli("status", "--address", hostport, "--token", token)
        assert warned.returncode == 0
        assert "--token-file" in warned.stderr
        assert warned.stdout.split("Alive:")[1].split("Dead:")[0].count("node_") == 3

        ember.init(address="auto", configure_logging=False)
        try:
            _run_a_task_and_an_actor()
            procs = {pid: cmdline(pid) for pid in _cluster_pids()}
        finally:
            ember.shutdown()
    finally:
        assert ember_cli("stop", "--force", env=other_env).returncode == 0
    kinds = " ".join(procs.values())
    for kind in ("ember.control", "ember.node", "ember.worker.forkserver"):
        assert kind in kinds
    assert not [c[:80] for c in procs.values() if token in c]


def test_each_head_has_its_own_token_and_a_live_one_is_not_clobbered(home):
    first = start_head(1)
    first_token = session.read_token(first)
    second = start_head(1)
    assert first != second
    assert session.token_path(first) != session.token_path(second)
    assert session.read_token(first) == first_token != session.read_token(second)
    # Each cluster is found with its own token, with no token argument.
    for address in (first, second):
        out = ember_cli("status", "--address", address)
        assert out.returncode == 0, out.stderr
    assert join(first).returncode == 0
    alive = ember_cli("status", "--address", first).stdout.split("Alive:")[1]
    assert alive.split("Dead:")[0].count("node_") == 2

    port = first.rpartition(":")[2]
    again = ember_cli(
        "start", "--head", "--port", port, "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE,
    )  # fmt: skip
    assert again.returncode != 0
    assert "already runs" in again.stderr
    assert first in again.stderr
    assert session.read_token(first) == first_token
    assert ember_cli("status", "--address", first).returncode == 0


def test_every_file_of_a_started_cluster_is_private(home):
    start_head(1)  # state in SQLite (the default), with its -wal and -shm files
    ember.init(address="auto", configure_logging=False)
    found: dict[str, dict[str, int]] = {"d": {}, "f": {}, "s": {}}
    try:
        _run_a_task_and_an_actor()
        for root in (session.root_dir(), session.user_dir()):
            for dirpath, _, names in os.walk(root):
                found["d"][dirpath] = stat.S_IMODE(os.lstat(dirpath).st_mode)
                for n in names:
                    p = os.path.join(dirpath, n)
                    st = os.lstat(p)
                    kind = "s" if stat.S_ISSOCK(st.st_mode) else "f"
                    found[kind][p] = stat.S_IMODE(st.st_mode)
    finally:
        ember.shutdown()
    names = {os.path.basename(p) for p in found["f"]}
    assert {"control.sqlite3", "control.sqlite3-wal", "control.sqlite3-shm"} <= names
    assert {"auth_token", "current_cluster.json", "pids.json", "node.log"} <= names
    assert len(found["s"]) >= 4  # control, node, workers, the driver
    wrong = [f"{m:o} {p}" for p, m in found["d"].items() if m != 0o700]
    wrong += [f"{m:o} {p}" for p, m in found["f"].items() if m != 0o600]
    wrong += [f"{m:o} {p}" for p, m in found["s"].items() if m & 0o077]
    assert not wrong, "\n".join(wrong)


def test_an_unsafe_runtime_folder_is_a_clear_error_not_a_traceback(home):
    folder = session.runtime_dir_path()
    os.mkdir(folder)
    os.chmod(folder, 0o777)
    for args in (["status"], ["start", "--head", "--port", "0"]):
        out = ember_cli(*args)
        assert out.returncode == 1
        assert f"ember refuses to use {folder}" in out.stderr
        assert "mode 777" in out.stderr
        assert "Traceback" not in out.stderr
