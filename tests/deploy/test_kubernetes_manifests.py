"""deploy/kubernetes/*.yaml: valid Kubernetes objects, and consistent with each other.

The schemas are the Kubernetes OpenAPI schemas that ``kubernetes-validate``
ships (no network at test time), checked strictly: an unknown or misspelt
field fails as it would with ``kubectl apply --validate=strict``.
"""

from __future__ import annotations

import glob
import os
import re

import pytest
from tests.deploy.conftest import ENTRYPOINT, KUBERNETES

yaml = pytest.importorskip("yaml", reason="PyYAML is in the test extras")
kv = pytest.importorskip(
    "kubernetes_validate", reason="kubernetes-validate is in the test extras"
)

#: the Kubernetes version the manifests are checked against
K8S_VERSION = "1.30.0"


def _documents() -> list[tuple[str, dict]]:
    out = []
    for path in sorted(
        glob.glob(os.path.join(KUBERNETES, "**", "*.yaml"), recursive=True)
    ):
        with open(path) as f:
            for doc in yaml.safe_load_all(f):
                if doc:
                    out.append((os.path.relpath(path, KUBERNETES), doc))
    return out


DOCS = _documents()


def _one(kind: str, name: str) -> dict:
    (doc,) = [d for _, d in DOCS if d["kind"] == kind and d["metadata"]["name"] == name]
    return doc


def _container(deployment: dict) -> dict:
    (c,) = deployment["spec"]["template"]["spec"]["containers"]
    return c


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_every_manifest_is_valid_against_the_kubernetes_schema():
    kinds = sorted((d["kind"], d["metadata"]["name"]) for _, d in DOCS)
    assert kinds == [
        ("Deployment", "ember-head"),
        ("Deployment", "ember-worker"),
        ("Secret", "ember-token"),
        ("Service", "ember-head"),
    ]
    for name, doc in DOCS:
        try:
            kv.validate(doc, K8S_VERSION, strict=True)
        except kv.ValidationError as exc:
            pytest.fail(f"{name}: {doc['kind']} {doc['metadata']['name']}: {exc}")


def test_applying_the_folder_never_replaces_the_token_secret():
    top = [name for name, _ in DOCS if "/" not in name]
    assert top
    assert all(d["kind"] != "Secret" for name, d in DOCS if name in top)


def test_the_validation_catches_a_misspelt_field():
    doc = dict(_one("Deployment", "ember-worker"))
    doc["spec"] = dict(doc["spec"], replcas=2)
    with pytest.raises(kv.ValidationError):
        kv.validate(doc, K8S_VERSION, strict=True)


def test_the_head_service_selects_the_head_pods_and_names_its_port():
    head = _one("Deployment", "ember-head")
    svc = _one("Service", "ember-head")
    labels = head["spec"]["template"]["metadata"]["labels"]
    assert svc["spec"]["selector"].items() <= labels.items()
    assert head["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert head["spec"]["replicas"] == 1  # one control service per cluster
    port = _env(_container(head))["EMBER_PORT"]["value"]
    (svc_port,) = svc["spec"]["ports"]
    assert str(svc_port["port"]) == port
    (cport,) = _container(head)["ports"]
    assert svc_port["targetPort"] == cport["name"]
    assert str(cport["containerPort"]) == port


def test_workers_join_the_head_through_its_service():
    worker = _container(_one("Deployment", "ember-worker"))
    host, _, port = _env(worker)["EMBER_HEAD_ADDRESS"]["value"].partition(":")
    svc = _one("Service", "ember-head")
    assert host == svc["metadata"]["name"]
    assert int(port) == svc["spec"]["ports"][0]["port"]
    assert worker["args"] == ["worker"]
    assert _container(_one("Deployment", "ember-head"))["args"] == ["head"]


@pytest.mark.parametrize("name", ["ember-head", "ember-worker"])
def test_each_node_gets_the_token_shm_and_resources_it_is_started_with(name):
    deployment = _one("Deployment", name)
    pod = deployment["spec"]["template"]["spec"]
    c = _container(deployment)
    env = _env(c)
    # the token: a file from the Secret, never an environment value
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m for m in c["volumeMounts"]}
    token_dir = os.path.dirname(env["EMBER_TOKEN_FILE"]["value"])
    token_volume = volumes[mounts[token_dir]["name"]]
    secret = _one("Secret", token_volume["secret"]["secretName"])
    assert os.path.basename(env["EMBER_TOKEN_FILE"]["value"]) in secret["stringData"]
    assert secret["stringData"]["token"] == ""  # never a token everyone knows
    assert "EMBER_AUTH_TOKEN" not in env
    # /dev/shm: memory-backed, larger than the object store
    shm = volumes[mounts["/dev/shm"]["name"]]["emptyDir"]
    assert shm["medium"] == "Memory"
    store = int(env["EMBER_OBJECT_STORE_MEMORY"]["value"])
    assert _quantity(shm["sizeLimit"]) > store
    # CPUs: ember schedules on the container's CPU limit, which the request matches
    ref = env["EMBER_NUM_CPUS"]["valueFrom"]["resourceFieldRef"]
    assert ref["resource"] == "limits.cpu"
    assert ref["containerName"] == c["name"]
    res = c["resources"]
    assert res["requests"]["cpu"] == res["limits"]["cpu"]
    # the memory limit holds the store (/dev/shm counts against it) and some room
    assert _quantity(res["limits"]["memory"]) >= 2 * store
    # the node's address is the pod's
    assert (
        env["EMBER_NODE_IP_ADDRESS"]["valueFrom"]["fieldRef"]["fieldPath"]
        == "status.podIP"
    )
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert "ember status" in " ".join(c["readinessProbe"]["exec"]["command"])


def test_every_variable_set_in_the_manifests_is_read_by_the_entrypoint():
    with open(ENTRYPOINT) as f:
        script = f.read()
    for _, doc in DOCS:
        if doc["kind"] != "Deployment":
            continue
        for var in _env(_container(doc)):
            assert f"${{{var}" in script or f"${var}" in script, var


def _quantity(q: str | int) -> int:
    """Bytes of a Kubernetes memory quantity (Mi, Gi, M, G or plain)."""
    m = re.fullmatch(r"(\d+)([KMG]i?)?", str(q))
    assert m, q
    n, unit = int(m.group(1)), m.group(2) or ""
    scale = {
        "": 1,
        "K": 10**3,
        "M": 10**6,
        "G": 10**9,
        "Ki": 2**10,
        "Mi": 2**20,
        "Gi": 2**30,
    }
    return n * scale[unit]
