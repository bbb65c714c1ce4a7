"""The kubernetes node provider against the official client's models (no cluster).

The API objects are stand-ins that keep the Deployment's replica count and
pods the way the API server would report them, as the client's own model
classes, and record the patches the provider sends.
"""

from __future__ import annotations

import datetime

import pytest

from ember.autoscaler.config import parse_config
from ember.autoscaler.kubernetes_provider import DELETION_COST, KubernetesProvider

k8s = pytest.importorskip("kubernetes.client", reason="pip install kubernetes")


class Apps:
    def __init__(self, replicas: int) -> None:
        self.replicas = replicas
        self.patches: list[tuple[str, dict]] = []

    def read_namespaced_deployment(self, name, namespace):
        return k8s.V1Deployment(
            metadata=k8s.V1ObjectMeta(name=name, namespace=namespace),
            spec=k8s.V1DeploymentSpec(
                selector=k8s.V1LabelSelector(match_labels={"app": name}),
                template=k8s.V1PodTemplateSpec(),
            ),
        )

    def read_namespaced_deployment_scale(self, name, namespace):
        return k8s.V1Scale(spec=k8s.V1ScaleSpec(replicas=self.replicas))

    def patch_namespaced_deployment_scale(self, name, namespace, body):
        self.patches.append((name, body))
        self.replicas = body["spec"]["replicas"]


class Core:
    def __init__(self, names: list[str]) -> None:
        self.names = names
        self.selectors: list[str] = []
        self.patches: list[tuple[str, dict]] = []

    def list_namespaced_pod(self, namespace, label_selector):
        self.selectors.append(label_selector)
        when = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
        pods = [
            k8s.V1Pod(metadata=k8s.V1ObjectMeta(name=n, creation_timestamp=when))
            for n in self.names
        ]
        pods.append(
            k8s.V1Pod(
                metadata=k8s.V1ObjectMeta(
                    name="going", creation_timestamp=when, deletion_timestamp=when
                )
            )
        )
        return k8s.V1PodList(items=pods)

    def patch_namespaced_pod(self, name, namespace, body):
        self.patches.append((name, body))


def provider(replicas=2, pods=("w-a", "w-b")):
    cfg = parse_config(
        {
            "provider": {"type": "kubernetes", "namespace": "ember"},
            "head_node_type": "head",
            "available_node_types": {
                "head": {"resources": {"CPU": 1}},
                "cpu": {
                    "resources": {"CPU": 2},
                    "node_config": {"deployment": "workers"},
                },
            },
        }
    )
    apps, core = Apps(replicas), Core(list(pods))
    return KubernetesProvider(cfg, apps=apps, core=core), apps, core, cfg


def test_nodes_are_the_deployments_pods_not_being_deleted():
    p, _, core, _ = provider()
    nodes = p.nodes()
    assert [(n.provider_id, n.node_type) for n in nodes] == [
        ("w-a", "cpu"),
        ("w-b", "cpu"),
    ]
    assert core.selectors == ["app=workers"]


def test_launch_adds_replicas():
    p, apps, _, cfg = provider(replicas=2)
    p.launch(cfg.node_types["cpu"], 3)
    assert apps.patches == [("workers", {"spec": {"replicas": 5}})]


def test_terminate_marks_the_pod_to_go_first_then_drops_one_replica():
    p, apps, core, _ = provider(replicas=2)
    p.terminate("w-b")
    assert core.patches == [
        ("w-b", {"metadata": {"annotations": {DELETION_COST: "-1000"}}})
    ]
    assert apps.patches == [("workers", {"spec": {"replicas": 1}})]
    p.terminate("not-ours")  # unknown pods are left alone
    assert len(apps.patches) == 1


def test_terminate_all_scales_to_zero():
    p, apps, _, _ = provider(replicas=4)
    p.terminate_all()
    assert apps.replicas == 0
