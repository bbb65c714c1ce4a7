"""Drivers that join the embedded cluster another driver's plain ``init()`` started.

The first driver is this test process (or a child playing the owner); second
drivers are child processes, which inherit the session's private runtime
folder (tests/conftest.py), so they find this session's cluster record only.
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import textwrap
import time

import psutil
import pytest
from tests.conftest import wait_until

import ember
from ember.common import session
from ember.exceptions import EmberSystemError, LocalNodeDiedError

pytestmark = pytest.mark.multiprocess

NAMESPACE = "join-test"

SECOND_DRIVER = textwrap.dedent(
    f"""
    import sys
    import ember
    address = sys.argv[1] if len(sys.argv) > 1 else None
    ember.init(address=address, namespace={NAMESPACE!r})
    keeper = ember.get_actor("keeper")
    print("value", ember.get(keeper.incr.remote(), timeout=60))
    ember.shutdown()
    """
)


@ember.remote
class Keeper:
    def __init__(self):
        self.n = 0

    def incr(self):
        self.n += 1
        return self.n


def run_driver(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("address", [None, "auto"])
def test_a_second_driver_joins_and_sees_the_first_drivers_named_actor(address):
    ember.init(num_cpus=1, namespace=NAMESPACE, configure_logging=False)
    try:
        rec = session.read_cluster_record()
        assert rec is not None
        assert rec["kind"] == "embedded"
        assert rec["pid"] == os.getpid()
        mode = stat.S_IMODE(os.stat(session.cluster_record_path()).st_mode)
        assert mode == 0o600
        keeper = Keeper.options(name="keeper").remote()
        assert ember.get(keeper.incr.remote(), timeout=60) == 1
        out = run_driver(SECOND_DRIVER, *([address] if address else []))
        assert out.returncode == 0, out.stderr
        assert "value 2" in out.stdout
        assert "Connecting to the existing ember cluster" in out.stderr
        assert f"driver pid {os.getpid()}" in out.stderr
        assert "Started a local ember cluster" not in out.stderr
        assert ember.get(keeper.incr.remote(), timeout=60) == 3
    finally:
        ember.shutdown()
    assert session.read_cluster_record() is None  # the record goes with the cluster


def test_a_second_driver_that_sets_resources_starts_its_own_cluster():
    ember.init(num_cpus=1, namespace=NAMESPACE, configure_logging=False)
    try:
        Keeper.options(name="keeper").remote()
        code = textwrap.dedent(
            f"""
            import ember
            ember.init(num_cpus=1, namespace={NAMESPACE!r})
            try:
                ember.get_actor("keeper")
            except ValueError:
                print("not found")
            """
        )
        out = run_driver(code)
        assert out.returncode == 0, out.stderr
        assert "not found" in out.stdout
        assert "Started a local ember cluster" in out.stderr
        assert session.read_cluster_record()["pid"] == os.getpid()  # still ours
    finally:
        ember.shutdown()


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _stale_record() -> dict:
    pid = _dead_pid()
    return {
        "kind": "embedded",
        "control_address": "unix:/nonexistent/sockets/control",
        "token": "stale",
        "session_dir": "/nonexistent",
        "pid": pid,
        "processes": [{"name": "driver", "pid": pid, "create_time": 1.0}],
    }


def test_plain_init_ignores_and_replaces_a_stale_record(caplog):
    stale = _stale_record()
    session.write_cluster_record(stale)
    with caplog.at_level(logging.INFO, logger="ember.api.init"):
        ember.init(num_cpus=1, configure_logging=False)
    try:
        assert "Ignoring the stale cluster record" in caplog.text
        assert f"pid {stale['pid']}" in caplog.text
        assert "Started a local ember cluster" in caplog.text
        assert session.read_cluster_record()["pid"] == os.getpid()
    finally:
        ember.shutdown()
    assert session.read_cluster_record() is None


def test_auto_with_a_stale_record_names_it():
    stale = _stale_record()
    session.write_cluster_record(stale)
    try:
        with pytest.raises(ConnectionError) as info:
            ember.init(address="auto", configure_logging=False)
        assert session.cluster_record_path() in str(info.value)
        assert f"driver (pid {stale['pid']}) exited" in str(info.value)
        assert not ember.is_initialized()
    finally:
        os.unlink(session.cluster_record_path())


OWNER = textwrap.dedent(
    f"""
    import sys
    import ember
    ember.init(num_cpus=1, namespace={NAMESPACE!r})

    @ember.remote
    class Keeper:
        def ping(self):
            return "pong"

    keeper = Keeper.options(name="keeper").remote()
    ember.get(keeper.ping.remote(), timeout=60)
    print("ready", flush=True)
    sys.stdin.readline()
    """
)


def _tree_of_session(pid: int) -> list[psutil.Process]:
    """Live processes of the sessions a driver ``pid`` started."""
    tag = f"_{pid}/"
    out = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if tag in " ".join(p.info["cmdline"] or ()) and (
                p.status() != psutil.STATUS_ZOMBIE
            ):
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def test_a_joined_driver_fails_clearly_once_the_owner_exits(capfd):
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        assert owner.stdin is not None
        assert owner.stdout.readline().strip() == "ready"
        ember.init(namespace=NAMESPACE, configure_logging=False)
        keeper = ember.get_actor("keeper")
        assert ember.get(keeper.ping.remote(), timeout=60) == "pong"

        @ember.remote
        def sleeper():
            time.sleep(300)

        pending = sleeper.remote()
        owner.stdin.write("\n")
        owner.stdin.flush()
        assert owner.wait(timeout=60) == 0
        # errors, not timeouts: a GetTimeoutError would fail these raises
        with pytest.raises((EmberSystemError, LocalNodeDiedError)):
            ember.get(pending, timeout=60)
        with pytest.raises(EmberSystemError, match=f"driver pid {owner.pid}"):
            ember.get(keeper.ping.remote(), timeout=60)
        with pytest.raises(EmberSystemError, match="has stopped"):
            sleeper.remote()
        assert ember.is_initialized()
    finally:
        ember.shutdown()
        if owner.poll() is None:
            owner.kill()
            owner.wait()
    assert not ember.is_initialized()
    err = capfd.readouterr().err
    assert err.count("The ember cluster this driver joined") == 1
    assert wait_until(lambda: not _tree_of_session(owner.pid), 30)
