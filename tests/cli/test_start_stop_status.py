"""`ember start`, `ember status` and `ember stop` with real daemons on 127.0.0.1.

Every test runs with its own HOME and TMPDIR, so ~/.ember and the cluster
record of the machine are never touched.  The daemons `ember start` leaves
running are not children of the test process: each test checks itself that
none is left (and that no shared-memory arena is).
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import pytest
from tests.cli.clitools import STORE, _alive, _recorded_pids, ember_cli, start_head
from tests.conftest import wait_until

import ember
from ember.common import session
from ember.protocol.messages import SCHEMA, Empty
from ember.rpc.connection import connect

pytestmark = pytest.mark.multiprocess


def test_start_head_join_status_connect_and_stop(home):
    address = start_head(2)
    token_file = session.token_path(address)
    assert token_file == os.path.join(
        home, "home", ".ember", "clusters", address.replace(":", "_"), "auth_token"
    )
    assert os.stat(token_file).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(token_file)).st_mode & 0o777 == 0o700
    assert os.stat(os.path.join(home, "home", ".ember")).st_mode & 0o777 == 0o700

    out = ember_cli("status")
    assert out.returncode == 0, out.stderr
    alive = out.stdout.split("Alive:")[1].split("Dead:")[0]
    assert alive.count("node_") == 1
    assert "(head)" in alive
    assert " 0/2 CPU" in out.stdout

    joined = ember_cli(
        "start", f"--address={address}", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "3", "--resources", '{"accel": 2}', "--object-store-memory", STORE,
    )  # fmt: skip
    assert joined.returncode == 0, joined.stderr
    out = ember_cli("status", "--address", address)
    alive = out.stdout.split("Alive:")[1].split("Dead:")[0]
    assert alive.count("node_") == 2, out.stdout
    assert " 0/5 CPU" in out.stdout.split("Total Usage:")[1]
    assert "(no resource demands)" in out.stdout

    ember.init(address="auto", configure_logging=False)
    try:
        nodes = ember.nodes()
        assert len(nodes) == 2
        assert all(n["Alive"] for n in nodes)
        assert sum(n["IsHeadNode"] for n in nodes) == 1
        totals = ember.cluster_resources()
        assert totals["CPU"] == 5
        assert totals["accel"] == 2

        @ember.remote
        def inc(x):
            return x + 1

        assert ember.get(inc.remote(1), timeout=30) == 2
    finally:
        ember.shutdown()

    daemons = _recorded_pids()
    assert len(session.list_session_records()) == 2
    out = ember_cli("stop")
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("Stopped the node daemon") == 2
    assert "Stopped the control service" in out.stdout
    assert wait_until(lambda: not _alive(daemons)), _alive(daemons)
    assert session.list_session_records() == []
    assert session.read_cluster_record() is None
    assert "Did not find" in ember_cli("stop").stdout


def test_join_with_wrong_or_missing_token_fails_at_once(home):
    address = start_head(1)
    t0 = time.monotonic()
    out = ember_cli("start", f"--address={address}", "--token", "wrong")
    assert out.returncode != 0
    assert time.monotonic() - t0 < 10
    assert "refused" in out.stderr
    assert "auth_token" in out.stderr

    other_home = os.path.join(home, "other")
    os.makedirs(other_home)
    env = {**os.environ, "HOME": other_home, "TMPDIR": other_home}
    out = ember_cli("start", f"--address={address}", env=env)
    assert out.returncode != 0
    assert "No cluster token" in out.stderr
    assert "--token" in out.stderr
    assert len(session.list_session_records()) == 1  # nothing was started


def test_control_state_survives_a_restart_with_sqlite_storage(home):
    db = os.path.join(home, "control.sqlite3")
    start_head(1, "--storage", f"sqlite:{db}")
    ember.init(address="auto", configure_logging=False, namespace="ns")
    try:

        @ember.remote
        class Keeper:
            def ping(self):
                return "pong"

        k = Keeper.options(name="keeper", lifetime="detached").remote()
        assert ember.get(k.ping.remote(), timeout=30) == "pong"
    finally:
        ember.shutdown()
    assert ember_cli("stop").returncode == 0
    start_head(1, "--storage", f"sqlite:{db}")
    rec = session.read_cluster_record()
    assert rec is not None

    async def list_actors():
        conn = await connect(
            rec["control_address"], token=rec["token"].encode(), schema=SCHEMA
        )
        try:
            reply, _ = await conn.call("control.list_actors", Empty(), timeout=10)
        finally:
            conn.close()
        return reply.actors

    actors = asyncio.run(list_actors())
    assert [a.name for a in actors] == ["keeper"]
    # Its process ended with the old cluster: the new head re-creates it (once its
    # old node has not come back within the grace period), and calls reach it.
    ember.init(address="auto", configure_logging=False, namespace="ns")
    try:
        k = ember.get_actor("keeper")
        assert ember.get(k.ping.remote(), timeout=60) == "pong"
    finally:
        ember.shutdown()
    assert [a.state for a in asyncio.run(list_actors())] == ["ALIVE"]


@pytest.mark.parametrize("command", [[], ["start"], ["stop"], ["status"]])
def test_every_command_has_help(command):
    out = ember_cli(*command, "--help")
    assert out.returncode == 0
    assert "Usage:" in out.stdout
    if command == ["start"]:
        assert "--include-dashboard" in out.stdout


def test_start_needs_head_or_address(home):
    out = ember_cli("start")
    assert out.returncode == 2
    assert "--head or --address" in out.stderr
    out = ember_cli("start", "--head", "--resources", '{"CPU": 2}')
    assert out.returncode == 2
    assert "--num-cpus" in out.stderr
    assert json.dumps(session.list_session_records()) == "[]"
