"""docker/compose.yaml: a head and two workers, sized shared memory, a shared token, health checks."""

from __future__ import annotations

import os

import pytest
from tests.deploy.conftest import COMPOSE, ENTRYPOINT, ROOT

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extras")


@pytest.fixture(scope="module")
def compose() -> dict:
    with open(COMPOSE) as f:
        return yaml.safe_load(f)


def _bytes(size: str) -> int:
    units = {"k": 2**10, "m": 2**20, "g": 2**30}
    size = size.lower().removesuffix("b")
    return int(size[:-1]) * units[size[-1]] if size[-1] in units else int(size)


def test_a_head_and_two_workers(compose):
    services = compose["services"]
    assert set(services) == {"head", "worker-1", "worker-2"}
    assert services["head"]["command"] == ["head"]
    for name in ("worker-1", "worker-2"):
        w = services[name]
        assert w["command"] == ["worker"]
        host, _, port = w["environment"]["EMBER_HEAD_ADDRESS"].partition(":")
        assert host == services["head"]["hostname"] == "head"
        assert port == services["head"]["environment"]["EMBER_PORT"]
        # workers start once the head answers `ember status`
        assert w["depends_on"]["head"]["condition"] == "service_healthy"


def test_every_node_has_shared_memory_for_its_store_and_the_token_secret(compose):
    secrets = compose["secrets"]
    for name, svc in compose["services"].items():
        store = int(svc["environment"]["EMBER_OBJECT_STORE_MEMORY"])
        assert _bytes(svc["shm_size"]) > store, name
        assert svc["secrets"] == ["ember_token"], name
        assert svc["environment"]["EMBER_TOKEN_FILE"] == "/run/secrets/ember_token"
        assert (
            "EMBER_AUTH_TOKEN" not in svc["environment"]
        )  # a file, not the environment
        assert svc["init"] is True  # reaps the daemons' exited children
        check = svc["healthcheck"]["test"]
        assert check[:3] == ["CMD", "ember", "status"], name
        assert "/run/secrets/ember_token" in check
        assert svc["build"]["dockerfile"] == "Dockerfile"
        context = os.path.normpath(
            os.path.join(os.path.dirname(COMPOSE), svc["build"]["context"])
        )
        assert context == ROOT
    token_file = os.path.normpath(
        os.path.join(os.path.dirname(COMPOSE), secrets["ember_token"]["file"])
    )
    with open(os.path.join(ROOT, ".gitignore")) as f:
        assert os.path.relpath(token_file, ROOT) in f.read().split()
    with open(os.path.join(ROOT, ".dockerignore")) as f:
        assert os.path.relpath(token_file, ROOT) in f.read().split()


def test_only_the_heads_port_is_published_and_only_on_loopback(compose):
    services = compose["services"]
    assert services["head"]["ports"] == ["127.0.0.1:6379:6379"]
    assert all("ports" not in services[w] for w in ("worker-1", "worker-2"))


def test_every_variable_set_is_read_by_the_entrypoint(compose):
    with open(ENTRYPOINT) as f:
        script = f.read()
    for svc in compose["services"].values():
        for var in svc["environment"]:
            assert f"${{{var}" in script or f"${var}" in script, var
