"""``@serve.deployment``, ``Deployment.options``/``.bind`` and the bound ``Application`` graph."""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import warnings
from dataclasses import dataclass
from typing import Any

import cloudpickle

from ember.serve.config import DeploymentConfig
from ember.serve.exceptions import ServeConfigError
from ember.serve.handle import DeploymentHandle

__all__ = ["Application", "Deployment", "DeploymentSpec", "build_app", "deployment"]

_CONFIG_FIELDS = {f.name for f in dataclasses.fields(DeploymentConfig)}
_UNSET: Any = object()


class Deployment:
    """A class or function with the options its replicas run with; ``.bind()`` makes an app."""

    def __init__(
        self,
        func_or_class: Any,
        name: str,
        config: DeploymentConfig,
        version: str | None = None,
    ) -> None:
        if not (inspect.isclass(func_or_class) or callable(func_or_class)):
            raise ServeConfigError(
                f"@serve.deployment must decorate a class or a function, got {func_or_class!r}"
            )
        self.func_or_class = func_or_class
        self._name = name
        self._config = config
        self._version = version

    @property
    def name(self) -> str:
        return self._name

    @property
    def version(self) -> str | None:
        return self._version

    @property
    def num_replicas(self) -> int:
        return self._config.num_replicas

    @property
    def max_ongoing_requests(self) -> int:
        return self._config.max_ongoing_requests

    @property
    def max_queued_requests(self) -> int:
        return self._config.max_queued_requests

    @property
    def user_config(self) -> Any:
        return self._config.user_config

    @property
    def ray_actor_options(self) -> dict[str, Any]:
        return self._config.ray_actor_options

    @property
    def autoscaling_config(self) -> Any:
        return self._config.autoscaling_config

    def options(self, **kwargs: Any) -> Deployment:
        """A copy with some options replaced (the same keywords as ``@serve.deployment``)."""
        name = kwargs.pop("name", self._name)
        version = kwargs.pop("version", self._version)
        func = kwargs.pop("func_or_class", self.func_or_class)
        cfg = _config_with(self._config, kwargs)
        return Deployment(func, name, cfg, version)

    def bind(self, *args: Any, **kwargs: Any) -> Application:
        """This deployment with its constructor's arguments: an application to ``serve.run``."""
        return Application(self, args, kwargs)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(
            "Deployments cannot be constructed directly: use `.bind()` and `serve.run`."
        )

    def __repr__(self) -> str:
        return f"Deployment(name={self._name})"


#: Ray 2.60 options ember.serve does not implement: refused, not ignored
_NOT_BUILT = {
    "placement_group_bundles",
    "placement_group_strategy",
    "placement_group_bundle_label_selector",
    "max_replicas_per_node",
    "backpressure_config",
    "request_router_config",
    "gang_scheduling_config",
}


def _config_with(base: DeploymentConfig, changes: dict[str, Any]) -> DeploymentConfig:
    not_built = sorted(k for k in set(changes) & _NOT_BUILT if changes[k] is not None)
    if not_built:
        raise ServeConfigError(f"ember.serve does not support the options {not_built}")
    if changes.pop("logging_config", None) is not None:
        warnings.warn(
            "ember.serve ignores a deployment's logging_config: replicas log as "
            "every ember worker does",
            stacklevel=3,
        )
    known = _CONFIG_FIELDS | _NOT_BUILT | {"route_prefix", "is_driver_deployment"}
    unknown = set(changes) - known
    if unknown:
        raise ServeConfigError(f"unknown deployment options: {sorted(unknown)}")
    changes = {k: v for k, v in changes.items() if k in _CONFIG_FIELDS}
    if (
        changes.get("num_replicas") not in (None, "auto")
        and "num_replicas" in changes
        and "autoscaling_config" not in changes
    ):
        changes["autoscaling_config"] = None
    if changes.get("autoscaling_config") is not None and "num_replicas" not in changes:
        changes["num_replicas"] = 1
    if changes.get("num_replicas", 1) is None:
        changes.pop("num_replicas")
    if "ray_actor_options" in changes and changes["ray_actor_options"] is None:
        changes["ray_actor_options"] = {}
    return base.replace(**changes)


def deployment(
    _func_or_class: Any = None,
    *,
    name: str | None = None,
    version: str | None = None,
    **options: Any,
) -> Any:
    """Make a class or function a Serve deployment (usable bare or with keywords)."""
    cfg = _config_with(DeploymentConfig(), options)

    def wrap(target: Any) -> Deployment:
        return Deployment(target, name or target.__name__, cfg, version)

    if _func_or_class is not None:
        return wrap(_func_or_class)
    return wrap


class Application:
    """A deployment bound to its constructor's arguments (which may be other applications)."""

    def __init__(
        self, deployment: Deployment, args: tuple, kwargs: dict[str, Any]
    ) -> None:
        self._deployment = deployment
        self._args = args
        self._kwargs = kwargs

    @property
    def deployment(self) -> Deployment:
        return self._deployment

    def __repr__(self) -> str:
        return f"Application({self._deployment.name})"


@dataclass
class DeploymentSpec:
    """What the controller keeps for one deployment of an application (picklable)."""

    name: str
    app_name: str
    callable_blob: bytes
    init_blob: bytes
    config: DeploymentConfig
    version: str
    is_asgi: bool = False


def build_app(app: Application, app_name: str) -> tuple[str, list[DeploymentSpec]]:
    """Flatten a bound graph into specs; bound arguments become handles. Returns the ingress."""
    if not isinstance(app, Application):
        raise ServeConfigError(
            f"serve.run expects an application (`Deployment.bind()`), got {app!r}"
        )
    names: dict[int, str] = {}
    specs: list[DeploymentSpec] = []
    used: set[str] = set()

    def visit(node: Application) -> str:
        if id(node) in names:
            return names[id(node)]
        dep = node.deployment
        name = dep.name
        n = 1
        while name in used:
            name = f"{dep.name}_{n}"
            n += 1
        used.add(name)
        names[id(node)] = name
        args = tuple(replace(a) for a in node._args)
        kwargs = {k: replace(v) for k, v in node._kwargs.items()}
        callable_blob = cloudpickle.dumps(dep.func_or_class)
        init_blob = cloudpickle.dumps((args, kwargs))
        cfg = dep._config
        version = (
            dep.version
            or hashlib.blake2b(
                callable_blob
                + init_blob
                + repr(sorted(cfg.ray_actor_options.items())).encode(),
                digest_size=8,
            ).hexdigest()
        )
        specs.append(
            DeploymentSpec(
                name=name,
                app_name=app_name,
                callable_blob=callable_blob,
                init_blob=init_blob,
                config=cfg,
                version=version,
                is_asgi=getattr(dep.func_or_class, "_serve_asgi_app", None) is not None,
            )
        )
        return name

    def replace(value: Any) -> Any:
        if isinstance(value, Application):
            return DeploymentHandle(visit(value), app_name)
        if isinstance(value, list):
            return [replace(v) for v in value]
        if isinstance(value, tuple):
            return tuple(replace(v) for v in value)
        if isinstance(value, dict):
            return {k: replace(v) for k, v in value.items()}
        return value

    ingress = visit(app)
    return ingress, specs
