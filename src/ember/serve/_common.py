"""Names and small records shared by Serve's driver side, controller, proxy and replicas."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

__all__ = [
    "CONTROLLER_NAME",
    "NAMESPACE",
    "PROXY_NAME",
    "RequestMeta",
    "ReplicaDrainingError",
    "deployment_key",
    "replica_actor_name",
]

#: Serve's actors live in their own namespace, so any driver finds them by name
NAMESPACE = "serve"
CONTROLLER_NAME = "SERVE_CONTROLLER_ACTOR"
PROXY_NAME = "SERVE_PROXY_ACTOR"
ROUTES_KEY = "routes"


def deployment_key(app_name: str, deployment_name: str) -> str:
    return f"{app_name}#{deployment_name}"


def replica_actor_name(app_name: str, deployment_name: str, replica_id: str) -> str:
    return f"SERVE_REPLICA::{app_name}#{deployment_name}#{replica_id}"


@dataclass
class RequestMeta:
    """What travels with every request to a replica besides the user's arguments."""

    method_name: str = "__call__"
    multiplexed_model_id: str = ""
    request_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    http: bool = False


class ReplicaDrainingError(Exception):
    """A replica that is shutting down refused a request before running any user code;
    the router sends the request to another replica."""
