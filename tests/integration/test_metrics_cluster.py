"""Prometheus endpoints of a real cluster: ``ember start --head`` plus a joined node.

Every node daemon and the control service serve Prometheus text on their own
port, found as a user finds it (the cluster status / ``ember.nodes()``), only
for ``Authorization: Bearer <cluster token>``.  The figures are read with an
HTTP client and prometheus_client's parser, as Prometheus reads them, while
this process drives a workload as a driver of the cluster.
"""

from __future__ import annotations

import os
import re
import subprocess
import urllib.error
import urllib.request

import numpy as np
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root, wait_until

import ember
from ember.cli import cluster_client
from ember.common import session
from ember.metrics import names

pytestmark = pytest.mark.multiprocess

STORE = str(256 * 2**20)
HEAD_PORT, CONTROL_PORT = 23117, 23118


class MetricsCluster:
    def __init__(self, root: str) -> None:
        self.root = root
        self.address = ""
        self.token = ""

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env_for(self.root), capture_output=True, text=True,
            timeout=120,
        )  # fmt: skip

    def status(self):
        return cluster_client.get_status(self.address, self.token, find_tls=False)

    def endpoints(self) -> dict[str, str]:
        """node id hex (or "control") -> its metrics URL."""
        st = self.status()
        out = {
            n.node_id.hex(): f"http://{n.ip}:{n.metrics_port}/metrics"
            for n in st.nodes
            if n.alive
        }
        out["control"] = f"http://{st.metrics_address}/metrics"
        return out


def get(url: str, token: str | None) -> tuple[int, str]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def samples(text: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out.setdefault(s.name, []).append(s)
    return out


def total(got: dict[str, list], name: str, **labels: str) -> float:
    return sum(
        s.value
        for s in got.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    )


@pytest.fixture(scope="module")
def cluster():
    root = make_root("emmx")
    c = MetricsCluster(root)
    try:
        common = ("--node-ip-address", "127.0.0.1", "--num-cpus", "1",
                  "--object-store-memory", STORE)  # fmt: skip
        # the head's ports are chosen (this suite's range: 23100-23199), the
        # joined node's is a free one
        out = c.cli("start", "--head", "--port", "0", *common,
                    "--metrics-export-port", str(HEAD_PORT),
                    "--control-metrics-export-port", str(CONTROL_PORT))  # fmt: skip
        assert out.returncode == 0, out.stderr
        joined = re.search(
            r"ember start --address='([^']+)' --token-file (\S+)", out.stdout
        )
        assert joined, out.stdout
        hostport, token_file = joined.groups()
        token_file = token_file.replace("~", os.path.join(root, "home"), 1)
        out = c.cli("start", f"--address={hostport}", "--token-file", token_file,
                    "--resources", '{"far": 1}', *common)  # fmt: skip
        assert out.returncode == 0, out.stderr
        c.address = f"tcp:{hostport}"
        c.token = session.read_token_file(token_file)
        assert wait_until(lambda: len(c.endpoints()) == 3, 30), c.status()
        yield c
    finally:
        if ember.is_initialized():
            ember.shutdown()
        problems = clean_up(root)
    assert not problems, problems


@pytest.fixture
def driver(cluster, monkeypatch):
    monkeypatch.setenv(session.TOKEN_ENV, cluster.token)
    ember.init(address=cluster.address.removeprefix("tcp:"))
    yield ember.get_runtime_context().get_node_id()
    ember.shutdown()


def test_endpoints_answer_401_without_the_token(cluster):
    st = cluster.status()
    assert st.metrics_address == f"127.0.0.1:{CONTROL_PORT}"
    ports = {n.is_head: n.metrics_port for n in st.nodes}
    assert ports[True] == HEAD_PORT
    assert ports[False] not in (0, HEAD_PORT, CONTROL_PORT)
    for url in cluster.endpoints().values():
        assert get(url, None)[0] == 401, url
        assert get(url, "not-the-token")[0] == 401, url
        status, body = get(url, cluster.token)
        assert status == 200, (url, body)


def test_every_metric_name_is_served_with_rays_labels(cluster):
    eps = cluster.endpoints()
    head = next(n for n in cluster.status().nodes if n.is_head)
    session_name = os.path.basename(head.session_dir.rstrip("/"))
    for key, url in eps.items():
        _, text = get(url, cluster.token)
        expected = names.CONTROL_METRICS if key == "control" else names.NODE_METRICS
        for name in expected:
            if name == names.TASKS:
                continue  # served once task events are kept (control/task_events.py)
            assert f"# TYPE {name} " in text, (key, name)
        for name in names.GPU_METRICS:  # this machine has no GPU
            assert name not in text
        got = samples(text)
        assert got
        for name, ss in got.items():
            for s in ss:
                # one cluster: one session name, the head's, on every node
                assert s.labels["SessionName"] == session_name, (key, name, s)
                assert s.labels["NodeAddress"] == "127.0.0.1", (key, name, s)


def test_figures_move_with_a_workload(cluster, driver):
    eps = cluster.endpoints()
    far = next(n.node_id.hex() for n in cluster.status().nodes if "far" in n.resources)

    def scrape(key: str) -> dict[str, list]:
        status, text = get(eps[key], cluster.token)
        assert status == 200
        return samples(text)

    def in_store(key: str) -> float:
        got = scrape(key)
        return total(got, names.OBJECT_STORE_MEMORY, ObjectState="SEALED") - total(
            got, names.OBJECT_STORE_MEMORY, Location="SPILLED"
        )

    before = in_store(driver)
    held = ember.put(np.ones(40 * 2**20, dtype=np.uint8))
    assert wait_until(lambda: in_store(driver) >= before + 40 * 2**20, 30)
    assert total(scrape(driver), names.OBJECT_STORE_NUM_LOCAL_OBJECTS) >= 1

    @ember.remote(resources={"far": 1})
    class Holder:
        def ping(self):
            return "pong"

    @ember.remote
    def square(x):
        return x * x

    leases_before = total(
        scrape(driver), names.RPC_LATENCY + "_count", Method="node.request_worker_lease"
    )
    h = Holder.remote()
    assert ember.get(h.ping.remote(), timeout=60) == "pong"
    assert ember.get([square.remote(i) for i in range(5)], timeout=60) == [
        0, 1, 4, 9, 16,
    ]  # fmt: skip
    pg = ember.util.placement_group([{"CPU": 0.1}])
    assert pg.wait(30)

    def control_sees_them() -> bool:
        got = scrape("control")
        return (
            total(got, names.ACTORS, State="ALIVE", Name="Holder") == 1
            and total(got, names.PLACEMENT_GROUPS, State="CREATED") >= 1
        )

    assert wait_until(control_sees_them, 30), scrape("control").get(names.ACTORS)
    got_far = scrape(far)
    assert total(got_far, names.RESOURCES, Name="far", State="USED") == 1
    assert total(got_far, names.RESOURCES, Name="far", State="AVAILABLE") == 0
    assert total(got_far, names.COMPONENT_COUNT, Component="worker") >= 1
    assert total(got_far, names.COMPONENT_RSS_BYTES, Component="worker") > 0
    got = scrape(driver)
    assert total(
        got, names.RPC_LATENCY + "_count", Method="node.request_worker_lease"
    ) > (leases_before)
    # this process is the driver, connected to that node
    assert total(got, names.COMPONENT_COUNT, Component="driver") >= 1
    assert total(got, names.COMPONENT_COUNT, Component="node") == 1
    ember.kill(h)
    ember.util.remove_placement_group(pg)
    assert wait_until(
        lambda: (
            total(scrape("control"), names.ACTORS, State="DEAD", Name="Holder") == 1
        ),
        30,
    )
    del held


def test_user_metrics_from_a_task_show_up_at_its_node(cluster, driver):
    eps = cluster.endpoints()

    @ember.remote(resources={"far": 1})
    def handle(n):
        from ember.util.metrics import Counter, Gauge, Histogram

        c = Counter("mx_requests", description="requests served", tag_keys=("route",))
        for _ in range(n):
            c.inc(tags={"route": "/a"})
        Gauge("mx_queue_depth").set(7)
        Histogram("mx_latency_s", boundaries=[0.1, 1.0]).observe(0.5)
        return ember.get_runtime_context().get_node_id()

    where = ember.get(handle.remote(3), timeout=60)
    from ember.util.metrics import Counter

    Counter("mx_driver_calls").inc(2)

    def user_figures(key: str) -> dict[str, list]:
        return samples(get(eps[key], cluster.token)[1])

    assert wait_until(
        lambda: total(user_figures(where), "ember_mx_requests_total", route="/a") == 3,
        30,
    ), user_figures(where).keys()
    got = user_figures(where)
    assert total(got, "ember_mx_queue_depth") == 7
    assert total(got, "ember_mx_latency_s_bucket", le="1.0") == 1
    assert total(got, "ember_mx_latency_s_bucket", le="0.1") == 0
    assert all(
        s.labels["NodeAddress"] == "127.0.0.1" for s in got["ember_mx_queue_depth"]
    )
    assert wait_until(
        lambda: total(user_figures(driver), "ember_mx_driver_calls_total") == 2, 30
    )
