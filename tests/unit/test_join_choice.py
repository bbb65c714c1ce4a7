"""Which cluster init() picks (``ember.api.join.choose``): no processes are started.

Records are written into a private runtime folder; "live" processes are this
test process, "dead" ones a child that has exited (its pid reaped).
"""

from __future__ import annotations

import os
import subprocess
import sys

import click
import pytest

from ember.api import join
from ember.cli import cluster_client
from ember.common import session


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    folder = tmp_path / "run"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    for var in join.ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    return folder


@pytest.fixture(scope="module")
def dead_pid():
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def record(kind: str, *pids: int) -> dict:
    return {
        "kind": kind,
        "control_address": "unix:/nowhere/sockets/control",
        "token": "t",
        "session_dir": "/nowhere",
        "pid": pids[0],
        "processes": [
            session.process_entry(f"p{i}", pid) for i, pid in enumerate(pids)
        ],
    }


def test_nothing_recorded_starts_a_local_cluster(runtime):
    assert join.choose(None, own_node=False) == join.Choice()
    assert join.choose("local", own_node=False) == join.Choice()


def test_auto_with_nothing_recorded_is_rays_connection_error(runtime):
    with pytest.raises(
        ConnectionError, match="Could not find any running ember instance"
    ):
        join.choose("auto", own_node=False)


def test_a_live_record_is_joined_with_or_without_auto(runtime):
    rec = record("embedded", os.getpid())
    session.write_cluster_record(rec)
    for address in (None, "auto"):
        choice = join.choose(address, own_node=False)
        assert choice.control == rec["control_address"]
        assert choice.record == rec
    assert "driver pid" in join.describe(choice)
    assert join.choose("local", own_node=False) == join.Choice()


def test_own_resources_do_not_join_another_drivers_cluster(runtime):
    session.write_cluster_record(record("embedded", os.getpid()))
    assert join.choose(None, own_node=True) == join.Choice()
    assert join.choose(
        "auto", own_node=True
    ).control  # auto still joins (then Ray's ValueError)


def test_own_resources_still_join_an_ember_start_cluster(runtime):
    rec = record("head", os.getpid())
    rec["control_address"] = "tcp:127.0.0.1:6379"
    session.write_cluster_record(rec)
    assert join.choose(None, own_node=True).control == "tcp:127.0.0.1:6379"
    with pytest.raises(ValueError, match="num_cpus and num_gpus must not be provided"):
        join.check_no_node_args(2, None, None, None)


def test_a_stale_record_is_removed_by_plain_init(runtime, dead_pid):
    session.write_cluster_record(record("embedded", dead_pid, dead_pid))
    assert join.choose(None, own_node=False) == join.Choice()
    assert session.read_cluster_record() is None


def test_a_half_dead_record_is_ignored_but_kept(runtime, dead_pid):
    session.write_cluster_record(record("head", dead_pid, os.getpid()))
    assert join.choose(None, own_node=False) == join.Choice()
    assert session.read_cluster_record() is not None


def test_auto_names_the_stale_record_and_the_process_that_is_gone(runtime, dead_pid):
    session.write_cluster_record(record("embedded", dead_pid))
    with pytest.raises(ConnectionError) as info:
        join.choose("auto", own_node=False)
    assert session.cluster_record_path() in str(info.value)
    assert f"pid {dead_pid}" in str(info.value)
    assert session.read_cluster_record() is not None  # auto does not remove it


def test_a_reused_pid_is_not_the_recorded_process(runtime):
    rec = record("embedded", os.getpid())
    rec["processes"][0]["create_time"] -= 3600.0  # our pid, but started an hour earlier
    assert session.dead_processes(rec) == rec["processes"]


def test_the_environment_replaces_none_and_auto(runtime, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:7000")
    assert join.choose(None, own_node=False).control == "tcp:127.0.0.1:7000"
    assert join.choose("auto", own_node=False).control == "tcp:127.0.0.1:7000"
    assert join.choose("10.0.0.1:1", own_node=False).control == "tcp:10.0.0.1:1"
    monkeypatch.setenv(session.ADDRESS_ENV, "local")
    assert join.choose(None, own_node=False) == join.Choice()


def test_malformed_addresses_are_value_errors(runtime):
    with pytest.raises(ValueError, match="Invalid address format"):
        join.choose("192.0.2.2", own_node=False)


def test_ember_status_names_a_stale_record(runtime, dead_pid):
    session.write_cluster_record(record("head", dead_pid))
    with pytest.raises(click.ClickException, match=f"pid {dead_pid}"):
        cluster_client.control_address(None)
