"""``ember.init()`` with no address joins the cluster ``ember start`` runs here, and says so.

Each test runs under its own HOME and TMPDIR (the ``home`` fixture), so the
cluster record it reads is the one its own ``ember start`` wrote.
"""

from __future__ import annotations

import glob
import logging

import pytest
from tests.cli.clitools import _alive, _recorded_pids, ember_cli, start_head
from tests.conftest import wait_until

import ember
from ember.common import session
from ember.exceptions import EmberSystemError

pytestmark = pytest.mark.multiprocess


def _sessions() -> list[str]:
    return glob.glob(f"{session.runtime_dir_path()}/session_*")


def test_plain_init_joins_the_ember_start_cluster_and_says_so(home, caplog):
    address = start_head(1)
    rec = session.read_cluster_record()
    assert rec["kind"] == "head"
    assert not session.dead_processes(rec)
    before = _sessions()
    with caplog.at_level(logging.INFO, logger="ember.api.init"):
        ember.init(configure_logging=False)
    try:
        assert f"Connecting to the existing ember cluster at {address}" in caplog.text
        assert "Connected to the ember cluster." in caplog.text
        assert "Started a local" not in caplog.text
        assert _sessions() == before  # no embedded cluster was started
        assert ember.cluster_resources()["CPU"] == 1

        @ember.remote
        def inc(x):
            return x + 1

        assert ember.get(inc.remote(1), timeout=30) == 2
    finally:
        ember.shutdown()
    # As in Ray: a driver joining a cluster does not set the node's resources.
    with pytest.raises(ValueError, match="When connecting to an existing cluster"):
        ember.init(num_cpus=2, configure_logging=False)
    assert not ember.is_initialized()


def test_a_driver_whose_cluster_is_stopped_gets_a_clear_error(home, capfd):
    start_head(1)
    ember.init(configure_logging=False)
    try:

        @ember.remote
        def inc(x):
            return x + 1

        assert ember.get(inc.remote(1), timeout=30) == 2
        daemons = _recorded_pids()
        assert ember_cli("stop").returncode == 0
        assert wait_until(lambda: not _alive(daemons)), _alive(daemons)
        with pytest.raises(EmberSystemError, match="has stopped"):
            ember.get(inc.remote(1), timeout=30)
    finally:
        ember.shutdown()
    assert "The ember cluster this driver joined" in capfd.readouterr().err
    assert session.read_cluster_record() is None
    # Nothing runs now: a plain init() starts a local cluster again.
    with pytest.raises(ConnectionError, match="Could not find any running"):
        ember.init(address="auto", configure_logging=False)
