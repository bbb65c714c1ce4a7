"""ember.serve: Ray Serve's API on ember: deployments, HTTP ingress, handles, batching.

Needs the ``serve`` extra for HTTP (``pip install 'ember[serve]'``: uvicorn and starlette).
"""

from __future__ import annotations

from ember.serve.api import (
    delete as delete,
    get_app_handle as get_app_handle,
    get_deployment_handle as get_deployment_handle,
    run as run,
    shutdown as shutdown,
    start as start,
    status as status,
)
from ember.serve.batching import batch as batch
from ember.serve.config import (
    AutoscalingConfig as AutoscalingConfig,
    HTTPOptions as HTTPOptions,
)
from ember.serve.context import (
    get_multiplexed_model_id as get_multiplexed_model_id,
    get_replica_context as get_replica_context,
)
from ember.serve.deployment import (
    Application as Application,
    Deployment as Deployment,
    deployment as deployment,
)
from ember.serve.handle import (
    DeploymentHandle as DeploymentHandle,
    DeploymentResponse as DeploymentResponse,
    DeploymentResponseGenerator as DeploymentResponseGenerator,
)
from ember.serve.ingress import ingress as ingress
from ember.serve.multiplex import multiplexed as multiplexed

__all__ = [
    "Application",
    "AutoscalingConfig",
    "Deployment",
    "DeploymentHandle",
    "DeploymentResponse",
    "DeploymentResponseGenerator",
    "HTTPOptions",
    "batch",
    "delete",
    "deployment",
    "get_app_handle",
    "get_deployment_handle",
    "get_multiplexed_model_id",
    "get_replica_context",
    "ingress",
    "multiplexed",
    "run",
    "shutdown",
    "start",
    "status",
]
