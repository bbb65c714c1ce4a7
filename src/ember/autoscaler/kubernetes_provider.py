"""The ``kubernetes`` node provider: one worker Deployment per node type, scaled.

Each worker node type names its Deployment in ``node_config.deployment``
(default ``ember-worker-<type>``) in ``provider.namespace`` (default
``default``). The Deployment's pods run ``ember start --address ... --block``
with ``--labels '{"ember.io/node-type": "<type>"}'`` (see
deploy/kubernetes/); a pod's host name is its name, which is how the shell
matches registered nodes to pods. Launching adds replicas. Stopping one pod:
it is marked with ``controller.kubernetes.io/pod-deletion-cost: -1000`` so
the ReplicaSet removes it first, then the Deployment loses one replica.

The official ``kubernetes`` client is imported only when no API objects are
given (``pip install kubernetes``); in a pod it uses the service account,
elsewhere the kubeconfig.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from ember.autoscaler.config import ClusterConfig, NodeType
from ember.autoscaler.provider import ProviderError, ProviderNode

logger = logging.getLogger(__name__)

DELETION_COST = "controller.kubernetes.io/pod-deletion-cost"


def _client_apis() -> tuple[Any, Any]:
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise ProviderError(
            "the kubernetes provider needs the official client: pip install kubernetes"
        ) from exc
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.AppsV1Api(), client.CoreV1Api()


class KubernetesProvider:
    """Scales the worker Deployments of a cluster through the Kubernetes API."""

    def __init__(
        self, config: ClusterConfig, *, apps: Any = None, core: Any = None
    ) -> None:
        if apps is None or core is None:
            apps, core = _client_apis()
        self.apps, self.core = apps, core
        self.namespace = str(config.provider.get("namespace", "default"))
        self.deployments = {
            name: str(t.node_config.get("deployment", f"ember-worker-{name}"))
            for name, t in config.worker_types.items()
        }

    def _selector(self, deployment: str) -> str:
        dep = self.apps.read_namespaced_deployment(deployment, self.namespace)
        labels = dep.spec.selector.match_labels or {}
        if not labels:
            raise ProviderError(
                f"Deployment {deployment!r} has no spec.selector.matchLabels to find its pods"
            )
        return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))

    def _replicas(self, deployment: str) -> int:
        scale = self.apps.read_namespaced_deployment_scale(deployment, self.namespace)
        return int(scale.spec.replicas or 0)

    def _scale(self, deployment: str, replicas: int) -> None:
        self.apps.patch_namespaced_deployment_scale(
            deployment, self.namespace, {"spec": {"replicas": max(0, replicas)}}
        )

    def nodes(self) -> list[ProviderNode]:
        out = []
        for node_type, deployment in sorted(self.deployments.items()):
            pods = self.core.list_namespaced_pod(
                self.namespace, label_selector=self._selector(deployment)
            )
            for pod in pods.items:
                meta = pod.metadata
                if meta.deletion_timestamp is not None:
                    continue
                created = meta.creation_timestamp
                at = created.timestamp() if created is not None else time.time()
                out.append(ProviderNode(meta.name, node_type, at))
        return out

    def launch(self, node_type: NodeType, count: int) -> list[str]:
        deployment = self.deployments[node_type.name]
        self._scale(deployment, self._replicas(deployment) + count)
        logger.info("scaled %s up by %d", deployment, count)
        return []  # the pods' names are known once the ReplicaSet made them

    def terminate(self, provider_id: str) -> None:
        for node in self.nodes():
            if node.provider_id != provider_id:
                continue
            deployment = self.deployments[node.node_type]
            self.core.patch_namespaced_pod(
                provider_id,
                self.namespace,
                {"metadata": {"annotations": {DELETION_COST: "-1000"}}},
            )
            self._scale(deployment, self._replicas(deployment) - 1)
            logger.info("scaled %s down, removing pod %s", deployment, provider_id)
            return

    def terminate_all(self) -> None:
        for deployment in self.deployments.values():
            self._scale(deployment, 0)
