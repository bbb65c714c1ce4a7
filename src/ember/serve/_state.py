"""The controller's records: one per application, deployment and replica (plain data)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from ember.serve._autoscale import ScaleDecider
from ember.serve.deployment import DeploymentSpec

__all__ = ["AppRecord", "DeploymentRecord", "ReplicaRecord"]

STARTING, RUNNING, STOPPING = "STARTING", "RUNNING", "STOPPING"


@dataclass
class ReplicaRecord:
    rid: str
    actor: Any
    version: str
    state: str = STARTING
    started_at: float = field(default_factory=time.monotonic)
    last_health: float = field(default_factory=time.monotonic)
    checking: bool = False
    model_ids: list[str] = field(default_factory=list)


@dataclass
class DeploymentRecord:
    spec: DeploymentSpec
    target: int
    replicas: dict[str, ReplicaRecord] = field(default_factory=dict)
    decider: ScaleDecider | None = None
    start_failures: int = 0
    failed: bool = False
    message: str = ""
    deleting: bool = False
    last_metrics: float = 0.0
    #: router id -> (time, queued + running requests it reported)
    handle_load: dict[str, tuple[float, float]] = field(default_factory=dict)

    def of(self, *, current: bool, states: tuple[str, ...]) -> list[ReplicaRecord]:
        v = self.spec.version
        return [
            r
            for r in self.replicas.values()
            if (r.version == v) == current and r.state in states
        ]

    def status(self) -> str:
        if self.failed:
            return "DEPLOY_FAILED"
        running = self.of(current=True, states=(RUNNING,))
        others = [r for r in self.replicas.values() if r not in running]
        if len(running) == self.target and not others:
            return "HEALTHY"
        if self.replicas and not running and self.start_failures:
            return "UNHEALTHY"
        if self.decider is not None and not others and len(running) != self.target:
            return "UPSCALING" if len(running) < self.target else "DOWNSCALING"
        return "UPDATING"

    def replica_states(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.replicas.values():
            out[r.state] = out.get(r.state, 0) + 1
        return out


@dataclass
class AppRecord:
    name: str
    route_prefix: str | None
    ingress: str
    deployments: list[str]
    deployed_at: float = field(default_factory=time.time)
    deploying: bool = True
    deleting: bool = False
