"""``ember serve run/deploy/status/shutdown`` against a cluster from ``ember start --head``."""

from __future__ import annotations

import json
import textwrap
import urllib.request

import pytest
import yaml

pytest.importorskip("starlette")

from tests.integration.jobs_server import head  # noqa: F401

# heavy (autoscaling, kills, restarts, a CLI cluster): in the slow run
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]
PORT = 18640
BASE = f"http://127.0.0.1:{PORT}"

APP = textwrap.dedent(
    """
    from ember import serve


    @serve.deployment(ray_actor_options={"num_cpus": 0})
    class Greeter:
        def __init__(self, greeting: str = "hello") -> None:
            self.greeting = greeting

        def __call__(self, request) -> dict:
            return {
                "text": f"{self.greeting} {request.query_params.get('name', 'you')}",
                "replica": serve.get_replica_context().replica_tag,
            }


    app = Greeter.bind()


    def build(args: dict):
        return Greeter.bind(args.get("greeting", "hi"))
    """
)


def get(path: str) -> dict:
    with urllib.request.urlopen(f"{BASE}{path}", timeout=30) as r:
        return json.loads(r.read())


def test_serve_cli_run_deploy_status_shutdown(head, tmp_path):  # noqa: F811
    (tmp_path / "greet_app.py").write_text(APP)
    d = str(tmp_path)
    out = head.cli(
        "serve", "run", "greet_app:app", "--non-blocking", "--port", str(PORT),
        "-d", d, "--address", "auto",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert get("/?name=ann")["text"] == "hello ann"

    status = head.cli("serve", "status", "--address", "auto")
    assert status.returncode == 0, status.stderr
    doc = yaml.safe_load(status.stdout)
    assert doc["applications"]["default"]["status"] == "RUNNING"

    config = {
        "http_options": {"port": PORT},
        "applications": [
            {
                "name": "builder",
                "route_prefix": "/b",
                "import_path": "greet_app:build",
                "args": {"greeting": "howdy"},
                "deployments": [{"name": "Greeter", "num_replicas": 2}],
            },
            {"name": "plain", "route_prefix": "/p", "import_path": "greet_app:app"},
        ],
    }
    (tmp_path / "serve.yaml").write_text(yaml.safe_dump(config))
    out = head.cli(
        "serve", "deploy", str(tmp_path / "serve.yaml"), "-d", d, "--address", "auto"
    )
    assert out.returncode == 0, out.stderr
    assert get("/b?name=bo")["text"] == "howdy bo"
    assert get("/p?name=cy")["text"] == "hello cy"
    assert len({get("/b")["replica"] for _ in range(20)}) == 2
    one = yaml.safe_load(
        head.cli("serve", "status", "-n", "builder", "-a", "auto").stdout
    )
    assert one["deployments"]["Greeter"]["replica_states"] == {"RUNNING": 2}

    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"applications": [{"name": "x"}]}))
    out = head.cli("serve", "deploy", str(bad), "--address", "auto")
    assert out.returncode != 0
    assert "import_path" in out.stderr

    out = head.cli("serve", "shutdown", "-y", "--address", "auto")
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(head.cli("serve", "status", "--address", "auto").stdout)
    assert doc["applications"] == {}
