"""The cluster config: node types and scaling limits, read from Ray's YAML keys.

``ember up cluster.yaml`` and ``ember start --head --autoscaling-config FILE``
read the same mapping. It uses Ray's cluster-config keys where they mean the
same thing (``cluster_name``, ``max_workers``, ``upscaling_speed``,
``idle_timeout_minutes``, ``provider``, ``available_node_types`` with
``resources``/``min_workers``/``max_workers``/``node_config``,
``head_node_type``); the keys of Ray's that set up machines (``auth``,
``setup_commands``, ``file_mounts``, ...) are accepted and ignored, and any
other key is refused, so that a typo is not silently dropped. A node type may
set ``idle_timeout_s`` (seconds, as in Ray's autoscaler v2), which overrides
the cluster's ``idle_timeout_minutes``.

Pure: parsing and checking only, no files (the caller reads the YAML).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ember.common.node_labels import node_labels_error

#: the label every node started by the autoscaler carries: its node type
NODE_TYPE_LABEL = "ember.io/node-type"
#: the label naming the provider's id of a node it launched (local provider)
LAUNCH_LABEL = "ember.io/launch-id"

#: the control service's KV namespace of the autoscaler
KV_NAMESPACE = "autoscaler"
#: request_resources() writes its bundles here (JSON: {"bundles": [...]})
REQUEST_KEY = b"resource_request"
#: the autoscaler's report of its last tick (JSON: monitor.Report)
STATUS_KEY = b"status"

#: Ray's keys that set up machines or containers: accepted, not used by ember
IGNORED_KEYS = frozenset(
    {
        "auth",
        "docker",
        "file_mounts",
        "cluster_synced_files",
        "file_mounts_sync_continuously",
        "rsync_exclude",
        "rsync_filter",
        "initialization_commands",
        "setup_commands",
        "head_setup_commands",
        "worker_setup_commands",
        "head_start_ray_commands",
        "worker_start_ray_commands",
        "no_restart",
        "metadata",
    }
)
TOP_KEYS = frozenset(
    {
        "cluster_name",
        "max_workers",
        "upscaling_speed",
        "idle_timeout_minutes",
        "provider",
        "available_node_types",
        "head_node_type",
    }
)
NODE_TYPE_KEYS = frozenset(
    {
        "resources",
        "min_workers",
        "max_workers",
        "idle_timeout_s",
        "node_config",
        "labels",
        "worker_setup_commands",
        "docker",
    }
)
PROVIDER_TYPES = ("local", "kubernetes")
#: Ray's defaults
DEFAULT_MAX_WORKERS = 2
DEFAULT_IDLE_TIMEOUT_MINUTES = 5.0
DEFAULT_UPSCALING_SPEED = 1.0


class ClusterConfigError(ValueError):
    """A cluster config that ember cannot use; the message names the key."""


@dataclass(frozen=True)
class NodeType:
    """One entry of ``available_node_types``."""

    name: str
    resources: dict[str, float]
    min_workers: int = 0
    max_workers: int = 0
    idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_MINUTES * 60
    labels: dict[str, str] = field(default_factory=dict)
    node_config: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClusterConfig:
    """A checked cluster config (what the policy and the providers read)."""

    cluster_name: str
    node_types: dict[str, NodeType]
    head_node_type: str
    max_workers: int = DEFAULT_MAX_WORKERS
    upscaling_speed: float = DEFAULT_UPSCALING_SPEED
    provider: dict[str, Any] = field(default_factory=lambda: {"type": "local"})
    #: the mapping it was read from (written next to the head for the autoscaler)
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def worker_types(self) -> dict[str, NodeType]:
        """The node types the autoscaler may launch (all but the head's)."""
        return {n: t for n, t in self.node_types.items() if n != self.head_node_type}

    @property
    def head(self) -> NodeType:
        return self.node_types[self.head_node_type]


def _number(where: str, value: Any, *, integer: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value < 0:
        raise ClusterConfigError(f"{where} must be a number >= 0, not {value!r}")
    if integer and int(value) != value:
        raise ClusterConfigError(f"{where} must be a whole number, not {value!r}")
    return value


def _mapping(where: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise ClusterConfigError(f"{where} must be a mapping with string keys")
    return value


def _node_type(
    name: str, raw: Any, default_idle_s: float, cluster_max: int
) -> NodeType:
    where = f"available_node_types.{name}"
    if why := node_labels_error({NODE_TYPE_LABEL: name}):
        raise ClusterConfigError(f"{where}: the name is used as a node label: {why}")
    body = _mapping(where, raw)
    unknown = set(body) - NODE_TYPE_KEYS
    if unknown:
        raise ClusterConfigError(
            f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(NODE_TYPE_KEYS)}"
        )
    resources = {
        k: float(_number(f"{where}.resources.{k}", v))
        for k, v in _mapping(f"{where}.resources", body.get("resources")).items()
    }
    low = int(_number(f"{where}.min_workers", body.get("min_workers", 0), integer=True))
    high = int(
        _number(
            f"{where}.max_workers", body.get("max_workers", cluster_max), integer=True
        )
    )
    if low > high:
        raise ClusterConfigError(
            f"{where}: min_workers ({low}) is more than max_workers ({high})"
        )
    labels = _mapping(f"{where}.labels", body.get("labels"))
    if why := node_labels_error(labels):
        raise ClusterConfigError(f"{where}.labels: {why}")
    return NodeType(
        name=name,
        resources=resources,
        min_workers=low,
        max_workers=high,
        idle_timeout_s=float(
            _number(
                f"{where}.idle_timeout_s", body.get("idle_timeout_s", default_idle_s)
            )
        ),
        labels=dict(labels),
        node_config=dict(_mapping(f"{where}.node_config", body.get("node_config"))),
    )


def parse_config(raw: Any) -> ClusterConfig:
    """Check a cluster config mapping (YAML's or JSON's) and return it typed.

    Raises:
        ClusterConfigError: naming the first key that is missing, unknown or wrong.
    """
    body = _mapping("the cluster config", raw)
    unknown = set(body) - TOP_KEYS - IGNORED_KEYS
    if unknown:
        raise ClusterConfigError(
            f"unknown cluster config key(s) {sorted(unknown)}; ember reads "
            f"{sorted(TOP_KEYS)} (and ignores {sorted(IGNORED_KEYS)})"
        )
    name = body.get("cluster_name", "default")
    if not isinstance(name, str) or not name or len(name) > 100:
        raise ClusterConfigError(f"cluster_name must be a short string, not {name!r}")
    cluster_max = int(
        _number(
            "max_workers", body.get("max_workers", DEFAULT_MAX_WORKERS), integer=True
        )
    )
    speed = float(
        _number("upscaling_speed", body.get("upscaling_speed", DEFAULT_UPSCALING_SPEED))
    )
    idle_s = 60 * float(
        _number(
            "idle_timeout_minutes",
            body.get("idle_timeout_minutes", DEFAULT_IDLE_TIMEOUT_MINUTES),
        )
    )
    provider = _mapping("provider", body.get("provider") or {"type": "local"})
    if provider.get("type") not in PROVIDER_TYPES:
        raise ClusterConfigError(
            f"provider.type must be one of {list(PROVIDER_TYPES)}, not "
            f"{provider.get('type')!r}"
        )
    raw_types = _mapping("available_node_types", body.get("available_node_types"))
    if not raw_types:
        raise ClusterConfigError(
            "available_node_types must name at least one node type"
        )
    types = {
        n: _node_type(n, t, idle_s, cluster_max) for n, t in sorted(raw_types.items())
    }
    head = body.get("head_node_type")
    if head is None and len(types) == 1:
        head = next(iter(types))
    if head not in types:
        raise ClusterConfigError(
            f"head_node_type {head!r} is not one of available_node_types "
            f"({sorted(types)})"
        )
    return ClusterConfig(
        cluster_name=name,
        node_types=types,
        head_node_type=head,
        max_workers=cluster_max,
        upscaling_speed=speed,
        provider=dict(provider),
        raw=dict(body),
    )
