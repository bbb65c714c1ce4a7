"""Serve's driver-side API: start, run, status, delete, shutdown and the handle look-ups."""

from __future__ import annotations

import time
from typing import Any

import ember
from ember.serve._common import CONTROLLER_NAME, NAMESPACE
from ember.serve._router import ServeClient, get_controller
from ember.serve.config import HTTPOptions
from ember.serve.context import current_replica
from ember.serve.controller import ServeController
from ember.serve.deployment import Application, build_app
from ember.serve.exceptions import RayServeException
from ember.serve.handle import DeploymentHandle
from ember.serve.schema import ServeStatus, status_from_record

__all__ = [
    "delete",
    "get_app_handle",
    "get_deployment_handle",
    "run",
    "shutdown",
    "start",
    "status",
]

#: how long serve.run waits for an application to come up
RUN_TIMEOUT_S = 600.0


def _ensure_initialized() -> None:
    if not ember.is_initialized():
        ember.init()


def _controller(http_options: Any = None, create: bool = True) -> Any:
    _ensure_initialized()
    try:
        return get_controller()
    except RayServeException:
        if not create:
            raise
    opts = HTTPOptions.coerce(http_options)
    return (
        ember.remote(ServeController)
        .options(
            name=CONTROLLER_NAME,
            namespace=NAMESPACE,
            lifetime="detached",
            num_cpus=0,
            max_concurrency=10_000,
            get_if_exists=True,
        )
        .remote(vars(opts))
    )


def start(
    proxy_location: Any = None,
    http_options: Any = None,
    grpc_options: Any = None,
    logging_config: Any = None,
    **kwargs: Any,
) -> None:
    """Start Serve (its controller and HTTP proxy) on the connected cluster."""
    if grpc_options is not None:
        raise NotImplementedError("ember.serve has no gRPC proxy (grpc_options)")
    opts = HTTPOptions.coerce(http_options)
    c = _controller(opts)
    if str(proxy_location).lower() not in ("disabled", "proxylocation.disabled"):
        ember.get(
            c.ensure_proxy.remote(vars(opts) if http_options is not None else None)
        )


def _check_prefix(route_prefix: Any) -> str | None:
    if route_prefix is None:
        return None
    if not isinstance(route_prefix, str) or not route_prefix.startswith("/"):
        raise ValueError(f"route_prefix must start with '/', got {route_prefix!r}")
    if route_prefix != "/" and route_prefix.endswith("/"):
        raise ValueError(
            f"route_prefix must not end with '/' unless it is '/', got {route_prefix!r}"
        )
    if "{" in route_prefix or "}" in route_prefix:
        raise ValueError("route_prefix may not contain wildcards")
    return route_prefix


def _deploy(app: Application, name: str, route_prefix: str | None) -> Any:
    ingress, specs = build_app(app, name)
    c = _controller()
    if route_prefix is not None:
        ember.get(c.ensure_proxy.remote())
    ember.get(c.deploy_application.remote(name, route_prefix, ingress, specs))
    return c, ingress


def _wait_running(c: Any, name: str) -> None:
    st = ember.get(c.wait_for_app.remote(name, RUN_TIMEOUT_S))
    if st["status"] == "DEPLOY_FAILED":
        raise RuntimeError(f"Deploying application {name} failed: {st['message']}")
    if st["status"] != "RUNNING":
        raise TimeoutError(f"Application {name} did not start: status {st['status']}")


def run(
    target: Application,
    blocking: bool = False,
    name: str = "default",
    route_prefix: str | None = "/",
    logging_config: Any = None,
    _local_testing_mode: bool = False,
    **kwargs: Any,
) -> DeploymentHandle:
    """Deploy an application, wait until it runs, and return its ingress handle."""
    if _local_testing_mode:
        raise NotImplementedError("ember.serve has no local testing mode")
    prefix = _check_prefix(route_prefix)
    c, ingress = _deploy(target, name, prefix)
    _wait_running(c, name)
    handle = DeploymentHandle(ingress, name)
    if blocking:
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
    return handle


def status() -> ServeStatus:
    """The state of every application, deployment and proxy."""
    try:
        c = _controller(create=False)
    except RayServeException:
        return ServeStatus()
    return status_from_record(ember.get(c.status.remote()))


def delete(name: str, _blocking: bool = True) -> None:
    """Delete an application: its replicas drain and stop, its route goes away."""
    c = _controller(create=False)
    ember.get(c.delete_application.remote(name))
    if _blocking:
        deadline = time.monotonic() + 120
        while ember.get(c.app_info.remote(name)) is not None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"application {name} was not deleted within 120 s")
            time.sleep(0.05)


def shutdown() -> None:
    """Delete every application and stop the controller and the proxy."""
    if not ember.is_initialized():
        return
    try:
        c = get_controller()
    except RayServeException:
        return
    try:
        ember.get(c.shutdown.remote())
    finally:
        ember.kill(c)
        ServeClient.reset()


def get_app_handle(name: str) -> DeploymentHandle:
    """The ingress handle of a running application."""
    c = _controller(create=False)
    info = ember.get(c.app_info.remote(name))
    if info is None:
        raise RayServeException(f"Application '{name}' does not exist.")
    return DeploymentHandle(info["ingress"], name)


def get_deployment_handle(
    deployment_name: str, app_name: str | None = None, **kwargs: Any
) -> DeploymentHandle:
    """A handle to one deployment of an application (the current one inside a replica)."""
    if app_name is None:
        ctx = current_replica()
        if ctx is not None:
            app_name = ctx.app_name
        else:
            apps = list(status().applications)
            if len(apps) != 1:
                raise RayServeException(
                    "Please specify an application name: there are "
                    f"{len(apps)} applications running."
                )
            app_name = apps[0]
    c = _controller(create=False)
    if ember.get(c.app_info.remote(app_name)) is None:
        raise RayServeException(f"Application '{app_name}' does not exist.")
    return DeploymentHandle(deployment_name, app_name)
