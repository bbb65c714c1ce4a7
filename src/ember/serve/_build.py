"""Applications from import paths and Ray's Serve config file (``ember serve run/deploy``).

The config schema is Ray's: ``http_options`` and ``applications: [{name, route_prefix,
import_path, args, deployments: [{name, <deployment options>}]}]``.
"""

from __future__ import annotations

import dataclasses
import importlib
import sys
from dataclasses import dataclass, field
from typing import Any

import cloudpickle

from ember.serve.config import AutoscalingConfig, DeploymentConfig
from ember.serve.deployment import Application, build_app
from ember.serve.exceptions import ServeConfigError

__all__ = [
    "AppConfig",
    "ServeConfig",
    "build_config",
    "import_application",
    "parse_config",
]

_APP_FIELDS = {
    "name",
    "route_prefix",
    "import_path",
    "args",
    "deployments",
    "runtime_env",
}
_TOP_FIELDS = {
    "proxy_location",
    "http_options",
    "grpc_options",
    "logging_config",
    "applications",
    "target_capacity",
}


def import_application(
    import_path: str, args: dict[str, Any] | None = None
) -> Application:
    """``module:attr`` (or ``module.attr``): an Application, or a builder called with args."""
    if ":" in import_path:
        mod_name, _, attr = import_path.partition(":")
    else:
        mod_name, _, attr = import_path.rpartition(".")
    if not mod_name or not attr:
        raise ServeConfigError(
            f"import path {import_path!r} must look like 'module:attribute'"
        )
    try:
        module = importlib.import_module(mod_name)
    except ImportError as e:
        raise ServeConfigError(
            f"cannot import {mod_name!r} ({import_path}): {e}"
        ) from e
    # the replicas may not see this folder: ship the user's module by value
    if not _installed(module):
        cloudpickle.register_pickle_by_value(module)
    target: Any = module
    for part in attr.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise ServeConfigError(f"{mod_name!r} has no attribute {attr!r}") from None
    if isinstance(target, Application):
        if args:
            raise ServeConfigError(
                f"{import_path} is an application, not a builder: it takes no arguments"
            )
        return target
    if callable(target):
        app = target(args or {})
        if isinstance(app, Application):
            return app
    raise ServeConfigError(
        f"{import_path} must be an application (`Deployment.bind()`) or a function "
        "that returns one"
    )


def _installed(module: Any) -> bool:
    path = getattr(module, "__file__", None) or ""
    return (
        "site-packages" in path
        or module.__name__.split(".")[0] in sys.stdlib_module_names
    )


def apply_overrides(app: Application, overrides: list[dict[str, Any]]) -> Application:
    """Replace the options of the graph's deployments named in ``overrides``."""
    by_name = {}
    for o in overrides:
        o = dict(o)
        if "name" not in o:
            raise ServeConfigError(f"a deployments entry has no name: {o!r}")
        by_name[o.pop("name")] = o
    seen: set[int] = set()
    found: set[str] = set()

    def visit(node: Application) -> None:
        if id(node) in seen:
            return
        seen.add(id(node))
        opts = by_name.get(node.deployment.name)
        if opts is not None:
            node._deployment = node.deployment.options(**opts)
            found.add(node.deployment.name)
        for v in list(node._args) + list(node._kwargs.values()):
            if isinstance(v, Application):
                visit(v)

    visit(app)
    missing = set(by_name) - found
    if missing:
        raise ServeConfigError(
            f"the config names deployments the app lacks: {sorted(missing)}"
        )
    return app


@dataclass
class AppConfig:
    name: str
    import_path: str
    route_prefix: str | None = "/"
    args: dict[str, Any] = field(default_factory=dict)
    deployments: list[dict[str, Any]] = field(default_factory=list)

    def build(self) -> Application:
        return apply_overrides(
            import_application(self.import_path, self.args), self.deployments
        )


@dataclass
class ServeConfig:
    http_options: dict[str, Any] | None
    applications: list[AppConfig]


def parse_config(doc: Any) -> ServeConfig:
    """Check a loaded config file against the schema; typed errors name the bad field."""
    if not isinstance(doc, dict):
        raise ServeConfigError("a Serve config file holds a mapping at the top")
    extra = set(doc) - _TOP_FIELDS
    if extra:
        raise ServeConfigError(
            f"unknown top-level fields in the config: {sorted(extra)}"
        )
    apps = doc.get("applications") or []
    if not isinstance(apps, list):
        raise ServeConfigError("'applications' must be a list")
    out = []
    names: set[str] = set()
    for i, a in enumerate(apps):
        if not isinstance(a, dict) or "import_path" not in a:
            raise ServeConfigError(f"applications[{i}] needs an import_path")
        extra = set(a) - _APP_FIELDS
        if extra:
            raise ServeConfigError(
                f"applications[{i}] has unknown fields: {sorted(extra)}"
            )
        name = a.get("name", "default")
        if name in names:
            raise ServeConfigError(f"two applications are named {name!r}")
        names.add(name)
        out.append(
            AppConfig(
                name=name,
                import_path=a["import_path"],
                route_prefix=a.get("route_prefix", "/"),
                args=dict(a.get("args") or {}),
                deployments=list(a.get("deployments") or []),
            )
        )
    return ServeConfig(http_options=doc.get("http_options"), applications=out)


def _options(cfg: DeploymentConfig) -> dict[str, Any]:
    """The options of a deployment that differ from the defaults (config-file form)."""
    default = DeploymentConfig()
    out: dict[str, Any] = {}
    for f in dataclasses.fields(DeploymentConfig):
        value, base = getattr(cfg, f.name), getattr(default, f.name)
        if value == base:
            continue
        if isinstance(value, AutoscalingConfig):
            value = dataclasses.asdict(value)
        out[f.name] = value
    return out


def build_config(import_paths: list[str]) -> dict[str, Any]:
    """A config file (Ray's schema) deploying these applications as their code sets them."""
    apps = []
    for i, path in enumerate(import_paths):
        name = f"app{i + 1}"
        app = import_application(path)
        _, specs = build_app(app, name)
        apps.append(
            {
                "name": name,
                "route_prefix": "/" if len(import_paths) == 1 else f"/{name}",
                "import_path": path,
                "runtime_env": {},
                "deployments": [
                    {"name": sp.name, **_options(sp.config)} for sp in specs
                ],
            }
        )
    return {
        "proxy_location": "EveryNode",
        # Ray writes 0.0.0.0 here; ember keeps the proxy on localhost unless you edit it
        "http_options": {"host": "127.0.0.1", "port": 8000},
        "applications": apps,
    }
