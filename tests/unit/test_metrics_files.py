"""The session's Prometheus and Grafana files (ember/metrics/files), without a server."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from ember.metrics.files import dashboards, grafana, prometheus, session_files
from ember.metrics.files.session_files import FileOptions, MetricsPaths


@dataclass
class Node:
    node_id: bytes
    ip: str
    metrics_port: int
    alive: bool = True
    is_head: bool = False


def mode(path: str) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# -- the discovery file ---------------------------------------------------------------
def test_discovery_lists_live_exporting_nodes_and_the_control_service(tmp_path):
    f = prometheus.DiscoveryFile(str(tmp_path / prometheus.DISCOVERY_FILE))
    f.set_control("10.0.0.1", 9100)
    nodes = [
        Node(b"\x01" * 4, "10.0.0.1", 9200, is_head=True),
        Node(b"\x02" * 4, "10.0.0.2", 9201),
        Node(b"\x03" * 4, "10.0.0.3", 9202, alive=False),  # lost
        Node(b"\x04" * 4, "10.0.0.4", 0),  # exports nothing
        Node(b"\x05" * 4, "fd00::5", 9203),
    ]
    assert f.update(nodes) is True
    groups = json.loads(Path(f.path).read_text())
    by_target = {g["targets"][0]: g["labels"] for g in groups}
    assert set(by_target) == {
        "10.0.0.1:9100",
        "10.0.0.1:9200",
        "10.0.0.2:9201",
        "[fd00::5]:9203",
    }
    assert by_target["10.0.0.1:9100"] == {"ember_component": "control"}
    assert by_target["10.0.0.1:9200"] == {
        "ember_component": "node",
        "ember_head": "true",
        "ember_node_id": "01010101",
    }
    assert by_target["10.0.0.2:9201"]["ember_head"] == "false"
    assert mode(f.path) == 0o600
    # Label names must be valid Prometheus names and not clash with exported labels.
    for labels in by_target.values():
        for name in labels:
            assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name


def test_discovery_rewrites_only_on_change_and_atomically(tmp_path):
    f = prometheus.DiscoveryFile(str(tmp_path / prometheus.DISCOVERY_FILE))
    a = Node(b"\x01", "127.0.0.1", 9200)
    assert f.update([a]) is True
    inode = os.stat(f.path).st_ino
    assert f.update([a]) is False  # same content: no write
    assert os.stat(f.path).st_ino == inode
    b = Node(b"\x02", "127.0.0.1", 9201)
    assert f.update([a, b]) is True
    assert os.stat(f.path).st_ino != inode  # a new file renamed over the old one
    assert len(json.loads(Path(f.path).read_text())) == 2
    a.alive = False
    assert f.update([a, b]) is True
    assert [g["targets"] for g in json.loads(Path(f.path).read_text())] == [
        ["127.0.0.1:9201"]
    ]
    assert sorted(os.listdir(tmp_path)) == [prometheus.DISCOVERY_FILE]


def test_a_control_service_on_every_interface_is_listed_at_the_head_ip(tmp_path):
    f = prometheus.DiscoveryFile(str(tmp_path / prometheus.DISCOVERY_FILE))
    f.set_control("0.0.0.0", 9100)
    f.update([])
    assert json.loads(Path(f.path).read_text())[0]["targets"] == ["127.0.0.1:9100"]
    f.update([Node(b"\x01", "10.1.2.3", 9200, is_head=True)])
    targets = [g["targets"][0] for g in json.loads(Path(f.path).read_text())]
    assert "10.1.2.3:9100" in targets


def test_a_failed_discovery_write_is_logged_not_raised(tmp_path, caplog):
    f = prometheus.DiscoveryFile(str(tmp_path / "missing" / prometheus.DISCOVERY_FILE))
    assert f.update([Node(b"\x01", "127.0.0.1", 9200)]) is False
    assert "could not write" in caplog.text


# -- prometheus.yml -------------------------------------------------------------------
def test_prometheus_yml_names_the_discovery_file_and_the_token_file():
    text = prometheus.prometheus_yml("/s/d.json", "/h/.ember/t", scrape_interval_s=1.5)
    assert "scrape_interval: 1500ms" in text
    assert "scrape_timeout: 1500ms" in text
    assert 'credentials_file: "/h/.ember/t"' in text
    assert "type: Bearer" in text
    assert '- "/s/d.json"' in text
    assert "scrape_interval: 10s" in prometheus.prometheus_yml("/d", "/t")
    assert "scrape_timeout: 10s" in prometheus.prometheus_yml(
        "/d", "/t", scrape_interval_s=30
    )
    with pytest.raises(ValueError, match="positive"):
        prometheus.prometheus_yml("/d", "/t", scrape_interval_s=0)


@pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool is not installed"
)
def test_promtool_accepts_the_generated_config(tmp_path):
    token = tmp_path / "auth_token"
    token.write_text("t" * 64)
    paths = session_files.write_session_files(
        str(tmp_path), str(token), FileOptions(scrape_interval_s=2)
    )
    prometheus.DiscoveryFile(paths.discovery).update([Node(b"\x01", "127.0.0.1", 9200)])
    out = subprocess.run(
        ["promtool", "check", "config", paths.prometheus_yml],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stdout + out.stderr


# -- the files of a session -----------------------------------------------------------
def test_the_session_files_are_private_and_name_absolute_paths(tmp_path):
    sd = tmp_path / "session_x"
    sd.mkdir(mode=0o700)
    token = tmp_path / "auth_token"
    token.write_text("t")
    paths = session_files.write_session_files(str(sd), str(token))
    expected = [
        paths.prometheus_yml,
        paths.grafana_ini,
        paths.datasources_yml,
        paths.dashboards_yml,
        paths.dashboard("default_grafana_dashboard.json"),
        paths.dashboard("object_store_grafana_dashboard.json"),
    ]
    for p in expected:
        assert mode(p) == 0o600, p
    for dirpath, _dirnames, _files in os.walk(sd / "metrics"):
        assert mode(dirpath) == 0o700, dirpath
    ini = Path(paths.grafana_ini).read_text()
    values = dict(line.split(" = ", 1) for line in ini.splitlines() if " = " in line)
    for key in (
        "data",
        "logs",
        "plugins",
        "provisioning",
        "default_home_dashboard_path",
    ):
        assert values[key].startswith(str(sd) + os.sep), key
    assert values["provisioning"] == os.path.join(paths.grafana_dir, "provisioning")
    assert values["http_addr"] == "127.0.0.1"
    assert str(token) in Path(paths.prometheus_yml).read_text()
    assert paths.discovery in Path(paths.prometheus_yml).read_text()
    assert paths.dashboards_dir in Path(paths.dashboards_yml).read_text()


def test_options_come_from_the_environment_and_are_checked():
    o = FileOptions.from_env(
        {
            "EMBER_METRICS_SCRAPE_INTERVAL_S": "2",
            "RAY_PROMETHEUS_HOST": "http://prom:9090",
            "EMBER_GRAFANA_HTTP_ADDR": "0.0.0.0",
            "EMBER_GRAFANA_HTTP_PORT": "3001",
        }
    )
    assert o == FileOptions(2.0, "http://prom:9090", "0.0.0.0", 3001)
    assert FileOptions.from_env({}) == FileOptions()
    assert (
        FileOptions.from_env(
            {"EMBER_PROMETHEUS_HOST": "https://a", "RAY_PROMETHEUS_HOST": "http://b"}
        ).prometheus_url
        == "https://a"
    )
    with pytest.raises(ValueError, match="EMBER_METRICS_SCRAPE_INTERVAL_S"):
        FileOptions.from_env({"EMBER_METRICS_SCRAPE_INTERVAL_S": "soon"})
    with pytest.raises(ValueError, match="positive"):
        FileOptions.from_env({"EMBER_METRICS_SCRAPE_INTERVAL_S": "-1"})
    with pytest.raises(ValueError, match="http://"):
        FileOptions.from_env({"EMBER_PROMETHEUS_HOST": "prom:9090"})
    with pytest.raises(ValueError, match="1-65535"):
        FileOptions.from_env({"EMBER_GRAFANA_HTTP_PORT": "70000"})


# -- dashboards ------------------------------------------------------------------------
VARIABLE = re.compile(r"\$(\w+)")
BUILTIN_VARIABLES = {"__rate_interval", "__interval", "__range"}
PANEL_TYPES = {"row", "timeseries", "stat"}


def provisioned_uid(paths: MetricsPaths) -> str:
    m = re.search(r'^\s*uid: "([^"]+)"', Path(paths.datasources_yml).read_text(), re.M)
    assert m, "the data source provisioning names no uid"
    return m.group(1)


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    sd = tmp_path_factory.mktemp("session")
    token = sd / "auth_token"
    token.write_text("t")
    paths = session_files.write_session_files(str(sd), str(token))
    models = [
        json.loads(Path(paths.dashboard(f)).read_text())
        for f in sorted(os.listdir(paths.dashboards_dir))
    ]
    return paths, models


def test_there_are_the_default_and_the_object_store_dashboards(written):
    _paths, models = written
    titles = {m["uid"]: m["title"] for m in models}
    assert set(titles) == {"ember-default", "ember-object-store"}
    default = next(m for m in models if m["uid"] == "ember-default")
    panels = {p["title"] for p in default["panels"]}
    for needed in (
        "Cluster utilisation",
        "Node CPU use %",
        "Node memory",
        "Node disk",
        "Node network",
        "Object store memory by location",
        "Tasks by state",
        "Actors by state",
        "Logical CPUs",
    ):
        assert needed in panels, needed


def test_every_dashboard_is_valid_for_grafana(written):
    paths, models = written
    uid = provisioned_uid(paths)
    assert uid == grafana.DATASOURCE_UID
    for m in models:
        where = m["title"]
        for key in ("uid", "title", "panels", "templating", "schemaVersion", "time"):
            assert key in m, (where, key)
        assert isinstance(m["schemaVersion"], int)
        variables = {v["name"] for v in m["templating"]["list"]}
        for v in m["templating"]["list"]:
            assert v["datasource"]["uid"] == uid
            assert v["query"]["query"] == v["definition"]
        ids = [p["id"] for p in m["panels"]]
        assert len(ids) == len(set(ids)), (where, "panel ids repeat")
        cells: set[tuple[int, int]] = set()
        for p in m["panels"]:
            assert p["type"] in PANEL_TYPES, (where, p["type"])
            g = p["gridPos"]
            assert g["x"] >= 0, (where, p["title"])
            assert g["w"] > 0, (where, p["title"])
            assert g["x"] + g["w"] <= 24, (where, p["title"])
            mine = {
                (x, y)
                for x in range(g["x"], g["x"] + g["w"])
                for y in range(g["y"], g["y"] + g["h"])
            }
            assert not mine & cells, (where, p["title"], "overlaps another panel")
            cells |= mine
            if p["type"] == "row":
                continue
            assert p["datasource"] == {"type": "prometheus", "uid": uid}
            assert p["targets"], (where, p["title"])
            refs = [t["refId"] for t in p["targets"]]
            assert len(refs) == len(set(refs)), (where, p["title"])
            for t in p["targets"]:
                assert t["datasource"]["uid"] == uid
                expr = t["expr"]
                assert "@N" not in expr, expr
                assert "@S" not in expr, expr
                assert expr.count("(") == expr.count(")"), expr
                assert expr.count("{") == expr.count("}"), expr
                assert re.search(r"\bember_\w+", expr), expr
                for name in VARIABLE.findall(expr):
                    assert name in variables or name in BUILTIN_VARIABLES, (expr, name)


def test_the_session_selector_starts_at_the_writing_session():
    d = dashboards.build(dashboards.load_spec("default.json"), "session_abc")
    session_var = d.model["templating"]["list"][0]
    assert session_var["name"] == "SessionName"
    assert session_var["current"]["value"] == ["session_abc"]
    everything = dashboards.build(dashboards.load_spec("default.json"))
    assert everything.model["templating"]["list"][0]["current"]["value"] == ["$__all"]


def test_every_charted_metric_is_one_ember_exports(written):
    from ember.metrics import names

    exported = {*names.NODE_METRICS, *names.CONTROL_METRICS, *names.GPU_METRICS}
    histograms = {names.RPC_LATENCY}
    _paths, models = written
    for m in models:
        for title, expr in dashboards.expressions(m):
            for metric in re.findall(r"\bember_\w+", expr):
                base = re.sub(r"_(bucket|count|sum)$", "", metric)
                assert metric in exported or base in histograms, (
                    m["title"],
                    title,
                    metric,
                )
