"""What ``serve.status()`` returns, with Ray's class and field names."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

__all__ = [
    "ApplicationStatus",
    "ApplicationStatusOverview",
    "DeploymentStatus",
    "DeploymentStatusOverview",
    "ProxyStatus",
    "ReplicaState",
    "ServeStatus",
    "status_from_record",
]


class ApplicationStatus(StrEnum):
    NOT_STARTED = "NOT_STARTED"
    DEPLOYING = "DEPLOYING"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    RUNNING = "RUNNING"
    UNHEALTHY = "UNHEALTHY"
    DELETING = "DELETING"


class DeploymentStatus(StrEnum):
    UPDATING = "UPDATING"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    DEPLOY_FAILED = "DEPLOY_FAILED"
    UPSCALING = "UPSCALING"
    DOWNSCALING = "DOWNSCALING"


class ReplicaState(StrEnum):
    STARTING = "STARTING"
    UPDATING = "UPDATING"
    RECOVERING = "RECOVERING"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"


class ProxyStatus(StrEnum):
    STARTING = "STARTING"
    HEALTHY = "HEALTHY"
    UNHEALTHY = "UNHEALTHY"
    DRAINING = "DRAINING"
    DRAINED = "DRAINED"


@dataclass
class DeploymentStatusOverview:
    status: DeploymentStatus
    replica_states: dict[ReplicaState, int]
    message: str = ""


@dataclass
class ApplicationStatusOverview:
    status: ApplicationStatus
    message: str
    last_deployed_time_s: float
    deployments: dict[str, DeploymentStatusOverview]


@dataclass
class ServeStatus:
    proxies: dict[str, ProxyStatus] = field(default_factory=dict)
    applications: dict[str, ApplicationStatusOverview] = field(default_factory=dict)
    target_capacity: float | None = None


def status_from_record(rec: dict[str, Any]) -> ServeStatus:
    apps = {}
    for name, a in rec.get("applications", {}).items():
        deps = {
            dn: DeploymentStatusOverview(
                status=DeploymentStatus(d["status"]),
                replica_states={
                    ReplicaState(k): v for k, v in d["replica_states"].items()
                },
                message=d["message"],
            )
            for dn, d in a["deployments"].items()
        }
        apps[name] = ApplicationStatusOverview(
            status=ApplicationStatus(a["status"]),
            message=a["message"],
            last_deployed_time_s=a["last_deployed_time_s"],
            deployments=deps,
        )
    proxies = {k: ProxyStatus(v) for k, v in rec.get("proxies", {}).items()}
    return ServeStatus(proxies=proxies, applications=apps)
