"""The dashboard in a real headless Chromium, as a user opens it.

``ember start --head`` (with its dashboard on 127.0.0.1) plus a joined node;
this process is a driver running a workload (tasks, a named actor on the
joined node, a placement group, a task that fails).  The browser visits
``/?token=...`` once (the cookie), then goes through every page by its link,
and each page must show that cluster's data: node ids, the actor's class,
the task names, the failed task's traceback, the job's log.  The charts must
move between two reads, no page may log a console error, and each page is
saved as a screenshot under ``$EMBER_TEST_ARTIFACTS`` (or tests/artifacts/).
Without the cookie the page is the login form, answered 401.

``EMBER_DOCS_SCREENSHOT=1`` also writes the overview to docs/img/dashboard.png
(the README's picture).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root, wait_until
from tests.util.cdp import Browser, find_chromium

import ember
from ember.common import session
from ember.util.placement_group import placement_group

pytestmark = [
    pytest.mark.multiprocess,
    pytest.mark.skipif(
        find_chromium() is None,
        reason="needs a Chromium (Debian package chromium; .ci/run installs it)",
    ),
]

#: this suite's range is 18400-18499
DASHBOARD_PORT = 18401
STORE = str(128 * 2**20)
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("EMBER_TEST_ARTIFACTS") or ROOT / "tests" / "artifacts")
MARKER = "dash traceback marker"


@ember.remote
def dash_square(x):
    return x * x


@ember.remote(max_retries=0)
def dash_fails():
    raise ValueError(MARKER)


@ember.remote(resources={"far": 1})
class DashProbe:
    def ping(self):
        return os.getpid()


class DashCluster:
    def __init__(self, root: str) -> None:
        self.root = root
        self.address = ""
        self.token = ""
        self.url = f"http://127.0.0.1:{DASHBOARD_PORT}"

    def cli(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*CLI, *args], env=env_for(self.root, **env), capture_output=True,
            text=True, timeout=120,
        )  # fmt: skip

    def request(
        self, path: str, *, body: dict | None = None, token: str | None = ""
    ) -> tuple[int, str]:
        """An HTTP request to the dashboard (the cluster token unless ``token`` is None)."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.url + path, data=data)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if token is not None:
            req.add_header("Authorization", f"Bearer {token or self.token}")
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()
        except OSError as err:
            return 0, str(err)


@pytest.fixture(scope="module")
def cluster():
    root = make_root("emdp")
    c = DashCluster(root)
    try:
        common = ("--node-ip-address", "127.0.0.1", "--object-store-memory", STORE)
        out = c.cli("start", "--head", "--port", "0", "--num-cpus", "2", *common,
                    "--dashboard-port", str(DASHBOARD_PORT),
                    EMBER_DASHBOARD_HISTORY_INTERVAL_S="1")  # fmt: skip
        assert out.returncode == 0, out.stderr
        joined = re.search(
            r"ember start --address='([^']+)' --token-file (\S+)", out.stdout
        )
        assert joined, out.stdout
        hostport, token_file = joined.groups()
        token_file = token_file.replace("~", os.path.join(root, "home"), 1)
        out = c.cli("start", f"--address={hostport}", "--token-file", token_file,
                    "--num-cpus", "1", "--resources", '{"far": 1}', *common)  # fmt: skip
        assert out.returncode == 0, out.stderr
        c.address = hostport
        c.token = session.read_token_file(token_file)
        assert wait_until(lambda: c.request("/api/version")[0] == 200, 60), c.request(
            "/api/version"
        )
        yield c
    finally:
        if ember.is_initialized():
            ember.shutdown()
        problems = clean_up(root)
    assert not problems, problems


@pytest.fixture(scope="module")
def workload(cluster):
    """This process as a driver: tasks done, an actor alive, a group, a failure."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(session.TOKEN_ENV, cluster.token)
        ember.init(address=cluster.address)
        try:
            assert ember.get([dash_square.remote(i) for i in range(6)], timeout=60) == [
                i * i for i in range(6)
            ]
            probe = DashProbe.options(name="dash-probe").remote()
            probe_pid = ember.get(probe.ping.remote(), timeout=60)
            pg = placement_group([{"CPU": 1}], strategy="PACK", name="dash-pg")
            assert pg.wait(60)
            with pytest.raises(ValueError, match=MARKER):
                ember.get(dash_fails.remote(), timeout=60)
            nodes = {n["NodeID"]: n for n in ember.nodes() if n["Alive"]}
            assert len(nodes) == 2
            far = next(i for i, n in nodes.items() if "far" in n["Resources"])
            yield {
                "nodes": sorted(nodes),
                "far": far,
                "probe_pid": probe_pid,
                "job_id": ember.get_runtime_context().get_job_id(),
                "probe": probe,
                "pg": pg,
            }
        finally:
            ember.shutdown()


@pytest.fixture(scope="module")
def browser(cluster, workload):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with Browser() as b:
        b.navigate(f"{cluster.url}/?token={cluster.token}")
        b.wait_for("document.getElementById('main')?.dataset.view === 'overview'")
        yield b


@pytest.fixture
def page(browser):
    """The browser, checked after the test for console errors."""
    browser.clear_events()
    yield browser
    assert browser.errors == []


def visit(b: Browser, link: str, view: str) -> str:
    """Follow the page's link to ``#<link>``; the page's text once it shows data."""
    clicked = b.evaluate(
        f"(() => {{ const a = document.querySelector('a[href=\"#{link}\"]');"
        f" if (!a) return false; a.click(); return true; }})()"
    )
    assert clicked, f"no link to #{link} on {b.evaluate('location.hash')}"
    b.wait_for(
        f"document.getElementById('main').dataset.view === {json.dumps(view)}"
        " && Number(document.getElementById('main').dataset.ticks) >= 1"
    )
    assert b.evaluate("document.getElementById('banner').hidden"), b.text("#banner")
    return b.text("#main")


def shot(b: Browser, name: str) -> None:
    b.screenshot(str(ARTIFACTS / f"dashboard-{name}.png"))


def chart_points(b: Browser) -> list[int]:
    return b.evaluate(
        "[...document.querySelectorAll('#main canvas')].map(c => Number(c.dataset.points))"
    )


def test_overview_shows_the_cluster_and_its_charts_move(cluster, workload, page):
    text = visit(page, "/", "overview")
    assert "2 alive" in text
    assert "0 dead" in text
    assert "CPU" in text
    page.wait_for(
        f"document.getElementById('overview-jobs').innerText.includes({json.dumps(workload['job_id'])})"
    )
    first = chart_points(page)
    assert len(first) == 5, first
    # the dashboard samples the cluster every second here: the lines grow
    page.wait_for(
        "[...document.querySelectorAll('#main canvas')].every((c, i) =>"
        f" Number(c.dataset.points) > {json.dumps(first)}[i])",
        timeout_s=60,
    )
    assert page.evaluate(
        "document.querySelector('#main canvas').width > 0"
    )  # drawn, not only counted
    shot(page, "overview")
    if os.environ.get("EMBER_DOCS_SCREENSHOT"):
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copy(
            ARTIFACTS / "dashboard-overview.png", ROOT / "docs/img/dashboard.png"
        )


def test_nodes_and_a_nodes_workers_and_logs(workload, page):
    text = visit(page, "/nodes", "nodes")
    for node_id in workload["nodes"]:
        assert node_id in text
    assert "127.0.0.1" in text
    shot(page, "nodes")
    text = visit(page, f"/nodes/{workload['far']}", "node")
    assert workload["far"] in text
    page.wait_for(
        "document.getElementById('node-workers').innerText.includes('DashProbe')"
    )
    assert str(workload["probe_pid"]) in page.text("#node-workers")
    logs = page.text("#node-logs")
    assert "node.log" in logs
    shot(page, "node")
    visit(page, f"/logs/{workload['far']}/node.log", "logFile")
    assert page.wait_for("document.getElementById('log-text').textContent.length > 0")


def test_actors_show_class_name_state_node_and_pid(workload, page):
    text = visit(page, "/actors", "actors")
    assert "DashProbe" in text
    assert "dash-probe" in text
    assert "ALIVE" in text
    assert workload["far"] in text
    assert str(workload["probe_pid"]) in text
    shot(page, "actors")


def test_tasks_show_counts_filters_and_the_failed_traceback(page):
    visit(page, "/tasks", "tasks")
    page.wait_for(
        "document.getElementById('tasks-summary').innerText.includes('dash_square')"
        f" && document.getElementById('tasks-failed').innerText.includes({json.dumps(MARKER)})"
    )
    failed = page.text("#tasks-failed")
    assert "dash_fails" in failed
    assert "ValueError" in failed
    assert "raise ValueError(MARKER)" in failed  # the traceback's source line
    assert "FINISHED" in page.text("#tasks-by-state")
    # the name filter leaves only that function's tasks
    page.evaluate(
        "(() => { const i = document.getElementById('task-name');"
        " i.value = 'dash_fails'; i.dispatchEvent(new Event('change')); })()"
    )
    page.wait_for(
        "(() => { const t = document.getElementById('tasks-table').innerText;"
        " return t.includes('dash_fails') && !t.includes('dash_square'); })()"
    )
    assert page.evaluate(
        "fetch(document.getElementById('timeline-link').href).then(r => r.status)"
    ) == 200  # fmt: skip
    shot(page, "tasks")


def test_placement_groups_show_name_strategy_and_state(page):
    text = visit(page, "/placement-groups", "pgs")
    assert "dash-pg" in text
    assert "PACK" in text
    assert "CREATED" in text
    assert "CPU 1" in text
    shot(page, "placement-groups")


def test_logs_list_every_nodes_files_and_show_one(workload, page):
    text = visit(page, "/logs", "logs")
    for node_id in workload["nodes"]:
        assert node_id in text
    shot(page, "logs")
    head = next(n for n in workload["nodes"] if n != workload["far"])
    visit(page, f"/logs/{head}/node.log", "logFile")
    page.wait_for("document.getElementById('log-text').textContent.length > 0")
    shot(page, "log-file")


def test_metrics_page_without_grafana_has_the_built_in_charts(page):
    text = visit(page, "/metrics", "metrics")
    assert "No Grafana" in text
    points = chart_points(page)
    assert len(points) == 7
    assert min(points) > 0
    shot(page, "metrics")


def test_jobs_list_detail_log_and_stop(cluster, workload, page):
    text = visit(page, "/jobs", "jobs")
    assert workload["job_id"] in text
    hello = f"{sys.executable} -c " + shlex.quote("print('hello from a dashboard job')")
    status, body = cluster.request("/api/jobs/", body={"entrypoint": hello})
    assert status == 200, body
    done = json.loads(body)["submission_id"]
    page.wait_for(f"document.getElementById('jobs-table').innerText.includes('{done}')")
    visit(page, f"/jobs/{done}", "job")
    page.wait_for(
        "document.getElementById('job-log').textContent.includes('hello from a dashboard job')"
        " && document.getElementById('job-info').innerText.includes('SUCCEEDED')",
        timeout_s=60,
    )
    assert "print(" in page.text("#job-info")  # the entrypoint
    shot(page, "job")
    # a running job stops from its page
    forever = f"{sys.executable} -c " + shlex.quote(
        "import sys, time\nprint('waiting to be stopped', flush=True)\n"
        "while True: time.sleep(1)"
    )
    status, body = cluster.request("/api/jobs/", body={"entrypoint": forever})
    assert status == 200, body
    running = json.loads(body)["submission_id"]
    page.evaluate(f"location.hash = '#/jobs/{running}'")
    page.wait_for(
        "document.getElementById('job-log')?.textContent.includes('waiting to be stopped')"
        " && !!document.getElementById('job-stop')",
        timeout_s=60,
    )
    page.evaluate("document.getElementById('job-stop').click()")
    page.wait_for(
        "document.getElementById('job-info').innerText.includes('STOPPED')",
        timeout_s=60,
    )


def test_without_the_cookie_the_page_is_the_login_form(cluster, page):
    assert cluster.request("/", token=None)[0] == 401
    assert cluster.request("/static/app.js", token=None)[0] == 401
    page.send("Network.clearBrowserCookies")
    page.clear_events()
    page.navigate(cluster.url + "/")
    statuses = [
        e["params"]["response"]["status"]
        for e in page.events
        if e["method"] == "Network.responseReceived"
        and e["params"]["response"]["url"].rstrip("/") == cluster.url
    ]
    assert statuses == [401], statuses
    assert page.evaluate("!!document.querySelector('form input[name=token]')")
    assert page.evaluate("!document.getElementById('main')")  # nothing else
    shot(page, "login")
    # a wrong token gets the form again; the right one opens the dashboard
    for token, view in (("not-the-token", None), (cluster.token, "overview")):
        page.evaluate_and_load(
            "(() => { const i = document.querySelector('form input[name=token]');"
            f" i.value = {json.dumps(token)}; i.form.submit(); }})()"
        )
        if view is None:
            assert page.evaluate("!!document.querySelector('form input[name=token]')")
        else:
            page.wait_for(
                f"document.getElementById('main')?.dataset.view === {json.dumps(view)}"
            )
    page.clear_events()  # the 401s of this test are the point, not errors
