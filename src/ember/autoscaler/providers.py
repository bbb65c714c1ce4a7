"""Choosing the node provider a cluster config names (each imported only when used)."""

from __future__ import annotations

from typing import Any

from ember.autoscaler.config import ClusterConfig
from ember.autoscaler.provider import NodeProvider, ProviderError


def make_provider(
    config: ClusterConfig, *, address: str, token: str, state_dir: str, **kw: Any
) -> NodeProvider:
    """The provider ``config.provider['type']`` names (imported on demand)."""
    kind = config.provider.get("type")
    if kind == "local":
        from ember.autoscaler.local_provider import LocalProvider

        return LocalProvider(config, address=address, token=token, state_dir=state_dir)
    if kind == "kubernetes":
        from ember.autoscaler.kubernetes_provider import KubernetesProvider

        return KubernetesProvider(config, **kw)
    raise ProviderError(f"no node provider of type {kind!r}")
