"""Serve config files without a cluster: parsing, overrides, ``ember serve build``."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import yaml

from ember.serve._build import import_application, parse_config
from ember.serve.exceptions import ServeConfigError

APP = textwrap.dedent(
    """
    from ember import serve

    @serve.deployment(num_replicas=2, user_config={"k": 1})
    class Leaf:
        pass

    @serve.deployment(max_ongoing_requests=9)
    class Root:
        def __init__(self, leaf):
            self.leaf = leaf

    app = Root.bind(Leaf.bind())

    def builder(args):
        return Root.options(name=args["name"]).bind(Leaf.bind())
    """
)


@pytest.fixture
def app_dir(tmp_path, monkeypatch):
    mod = f"cfg_app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{mod}.py").write_text(APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path, mod


def test_config_overrides_reach_the_named_deployments(app_dir):
    _, mod = app_dir
    cfg = parse_config(
        {
            "applications": [
                {
                    "name": "a",
                    "route_prefix": "/a",
                    "import_path": f"{mod}:app",
                    "deployments": [{"name": "Leaf", "num_replicas": 3}],
                },
                {
                    "name": "b",
                    "import_path": f"{mod}:builder",
                    "args": {"name": "Named"},
                },
            ]
        }
    )
    a, b = cfg.applications
    leaf = a.build()._args[0].deployment
    assert (leaf.num_replicas, leaf.user_config) == (3, {"k": 1})
    assert b.build().deployment.name == "Named"
    assert b.route_prefix == "/"


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"applications": [{"name": "x"}]}, "import_path"),
        ({"apps": []}, "unknown top-level"),
        ({"applications": [{"import_path": "m:a", "bogus": 1}]}, "unknown fields"),
        (
            {"applications": [{"import_path": "m:a"}, {"import_path": "m:b"}]},
            "two applications",
        ),
        ([], "mapping"),
    ],
)
def test_bad_config_files_are_typed_errors(doc, match):
    with pytest.raises(ServeConfigError, match=match):
        parse_config(doc)


def test_bad_import_paths_and_overrides(app_dir):
    _, mod = app_dir
    with pytest.raises(ServeConfigError, match="cannot import"):
        import_application("no_such_module_xyz:app")
    with pytest.raises(ServeConfigError, match="no attribute"):
        import_application(f"{mod}:missing")
    cfg = parse_config(
        {
            "applications": [
                {"import_path": f"{mod}:app", "deployments": [{"name": "Nope"}]}
            ]
        }
    )
    with pytest.raises(ServeConfigError, match="Nope"):
        cfg.applications[0].build()


def test_serve_build_writes_a_config_that_parses_back(app_dir):
    tmp, mod = app_dir
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "ember.serve.scripts",
            "build",
            f"{mod}:app",
            "-d",
            str(tmp),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    doc = yaml.safe_load(out.stdout)
    [app] = doc["applications"]
    assert app["import_path"] == f"{mod}:app"
    deps = {d["name"]: d for d in app["deployments"]}
    assert deps["Leaf"]["num_replicas"] == 2
    assert deps["Leaf"]["user_config"] == {"k": 1}
    assert deps["Root"]["max_ongoing_requests"] == 9
    assert doc["http_options"]["host"] == "127.0.0.1"
    assert parse_config(doc).applications[0].name == "app1"
