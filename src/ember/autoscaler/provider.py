"""The node provider seam: what the autoscaler asks of a place that runs nodes.

A provider starts nodes of a node type and stops them by its own id. Every
node it starts joins the cluster carrying the label ``ember.io/node-type``
(and, when the provider can set one per node, ``ember.io/launch-id``), so
that the shell can match the control service's nodes to the provider's
(:func:`matches`). Providers do blocking I/O (processes, ssh, the Kubernetes
API); the shell calls them from a thread.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ember.autoscaler.config import LAUNCH_LABEL, NodeType


@dataclass(frozen=True)
class ProviderNode:
    """A node the provider started and that has not been stopped."""

    provider_id: str
    node_type: str
    #: wall-clock time of the launch (time.time())
    launched_at: float


class NodeProvider(Protocol):
    def nodes(self) -> list[ProviderNode]:
        """The nodes started and still running (or starting)."""
        ...

    def launch(self, node_type: NodeType, count: int) -> list[str]:
        """Start ``count`` nodes of ``node_type``; their provider ids."""
        ...

    def terminate(self, provider_id: str) -> None:
        """Stop one node (drained before by the shell); idempotent."""
        ...

    def terminate_all(self) -> None:
        """Stop every node this provider started (``ember down``)."""
        ...


class ProviderError(RuntimeError):
    """A provider could not start or stop a node; the message says why."""


def matches(node: ProviderNode, labels: dict[str, str], hostname: str) -> bool:
    """Whether a registered node (its labels and host name) is ``node``."""
    launch_id = labels.get(LAUNCH_LABEL)
    if launch_id:
        return launch_id == node.provider_id
    return hostname == node.provider_id
