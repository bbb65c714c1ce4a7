"""``ember status``: the object store's real use and infeasible requests are shown."""

from __future__ import annotations

import numpy as np
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cli import cluster_client
from ember.cli.status import format_status
from ember.cluster_utils import Cluster
from ember.common import session

pytestmark = pytest.mark.multiprocess


@pytest.fixture
def cluster(monkeypatch):
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    monkeypatch.delenv(session.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "object_store_memory": 200 * 2**20},
        shutdown_at_exit=False,
    )
    c.connect()
    yield c
    ember.shutdown()
    c.shutdown()
    assert wait_until(lambda: not live_children())


def _report(c: Cluster) -> str:
    return format_status(
        c.control_address, cluster_client.get_status(c.control_address, c.token)
    )


def _store_line(report: str) -> str:
    total = report.split("Total Usage:")[1]
    return next(x for x in total.splitlines() if "object_store_memory" in x)


def test_status_shows_object_store_use(cluster):
    held = ember.put(np.zeros(100 * 2**20, dtype=np.uint8))
    # 100 MiB held of 200 MiB: the report catches up within a heartbeat
    assert wait_until(lambda: _store_line(_report(cluster)).startswith(" 100."), 15), (
        _report(cluster)
    )
    del held


def test_status_lists_infeasible_requests(cluster):
    @ember.remote(num_gpus=1)
    def needs_gpu():
        return 1

    ref = needs_gpu.remote()

    def listed() -> bool:
        infeasible = _report(cluster).split("Infeasible Requests")[1]
        return "'GPU': 1.0" in infeasible and "waiting" in infeasible

    assert wait_until(listed, 15), _report(cluster)
    ember.cancel(ref)
