"""The Serve controller: a detached actor that keeps the target state and reconciles it.

Its loop starts replicas until each deployment has its target, health-checks them,
replaces the dead, rolls a new version in before the old one drains, and follows the
autoscaler. Routers and the proxy learn of changes by long-polling ``listen_for_change``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import ember
from ember.serve._autoscale import ScaleDecider
from ember.serve._common import (
    NAMESPACE,
    PROXY_NAME,
    ROUTES_KEY,
    deployment_key,
)
from ember.serve._replicas import ReplicaManager
from ember.serve._state import (
    RUNNING,
    STARTING,
    AppRecord,
    DeploymentRecord,
)
from ember.serve.config import HTTPOptions
from ember.serve.deployment import DeploymentSpec
from ember.serve.exceptions import RayServeException
from ember.serve.proxy import ServeProxy

__all__ = ["ServeController"]

logger = logging.getLogger(__name__)

TICK_S = 0.05


class ServeController:
    """Target state, reconciliation and the long-poll host of one Serve instance."""

    def __init__(self, http_options: dict[str, Any] | None = None) -> None:
        self.http = HTTPOptions.coerce(http_options)
        self.apps: dict[str, AppRecord] = {}
        self.deps: dict[str, DeploymentRecord] = {}
        self.versions: dict[str, int] = {}
        self._changed: asyncio.Event | None = None
        self._loop_task: asyncio.Task[None] | None = None
        self.proxy: Any = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.manager = ReplicaManager(self._bump, self._spawn)

    # ---- plumbing ----

    def _ensure_loop(self) -> None:
        if self._loop_task is None:
            self._changed = asyncio.Event()
            self._loop_task = asyncio.get_running_loop().create_task(self._run())

    def _spawn(self, coro: Any) -> None:
        t = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def _bump(self, key: str) -> None:
        self.versions[key] = self.versions.get(key, 0) + 1
        if self._changed is not None:
            self._changed.set()
            self._changed = asyncio.Event()

    def _snapshot(self, key: str) -> dict[str, Any]:
        if key == ROUTES_KEY:
            return {
                "routes": {
                    a.route_prefix: (a.name, a.ingress)
                    for a in self.apps.values()
                    if a.route_prefix is not None and not a.deleting
                }
            }
        d = self.deps.get(key)
        if d is None:
            return {
                "status": "deleted",
                "replicas": [],
                "max_ongoing": 1,
                "max_queued": -1,
            }
        cfg = d.spec.config
        return {
            "status": "failed" if d.failed and not d.replicas else "ok",
            "replicas": [
                (r.rid, r.actor) for r in d.of(current=True, states=(RUNNING,))
            ]
            + [(r.rid, r.actor) for r in d.of(current=False, states=(RUNNING,))],
            "max_ongoing": cfg.max_ongoing_requests,
            "models": {r.rid: r.model_ids for r in d.replicas.values() if r.model_ids},
            "max_queued": cfg.max_queued_requests,
            "metrics_interval_s": (
                cfg.autoscaling_config.metrics_interval_s
                if cfg.autoscaling_config
                else None
            ),
        }

    # ---- long poll ----

    async def get_snapshot(self, key: str) -> tuple[int, dict[str, Any]]:
        self._ensure_loop()
        return self.versions.get(key, 0), self._snapshot(key)

    async def listen_for_change(
        self, known: dict[str, int], timeout_s: float
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        self._ensure_loop()
        deadline = time.monotonic() + timeout_s
        while True:
            changed = {
                k: (self.versions.get(k, 0), self._snapshot(k))
                for k, v in known.items()
                if self.versions.get(k, 0) != v
            }
            left = deadline - time.monotonic()
            if changed or left <= 0:
                return changed
            assert self._changed is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait(), left)

    async def record_handle_metrics(
        self, key: str, router_id: str, load: float, ts: float
    ) -> None:
        d = self.deps.get(key)
        if d is not None:
            d.handle_load[router_id] = (time.monotonic(), load)

    async def record_model_ids(self, key: str, rid: str, model_ids: list[str]) -> None:
        """A replica's multiplexed models changed: routers prefer it for those ids."""
        d = self.deps.get(key)
        if d is not None and rid in d.replicas:
            d.replicas[rid].model_ids = list(model_ids)
            self._bump(key)

    async def report_replica_failure(self, key: str, rid: str) -> None:
        d = self.deps.get(key)
        if d is not None and rid in d.replicas and d.replicas[rid].state == RUNNING:
            self._spawn(self.manager.health_check(d, d.replicas[rid]))

    # ---- applications ----

    async def deploy_application(
        self,
        name: str,
        route_prefix: str | None,
        ingress: str,
        specs: list[DeploymentSpec],
    ) -> None:
        self._ensure_loop()
        for other in self.apps.values():
            if (
                other.name != name
                and route_prefix is not None
                and other.route_prefix == route_prefix
                and not other.deleting
            ):
                raise RayServeException(
                    f"Prefix {route_prefix} is being used by application "
                    f'"{other.name}". Failed to deploy application "{name}".'
                )
        old = self.apps.get(name)
        names = [s.name for s in specs]
        if old is not None:
            for dep in old.deployments:
                if dep not in names:
                    self._delete_deployment(deployment_key(name, dep))
        for spec in specs:
            self._upsert(spec)
        self.apps[name] = AppRecord(name, route_prefix, ingress, names)
        self._bump(ROUTES_KEY)

    def _upsert(self, spec: DeploymentSpec) -> None:
        key = deployment_key(spec.app_name, spec.name)
        cfg = spec.config
        d = self.deps.get(key)
        if d is None or d.deleting:
            d = DeploymentRecord(spec=spec, target=cfg.initial_target())
            if cfg.autoscaling_config is not None:
                d.decider = ScaleDecider(cfg.autoscaling_config)
            if key in self.deps:  # was being deleted: keep its stopping replicas
                d.replicas = self.deps[key].replicas
            self.deps[key] = d
        else:
            user_config_changed = cfg.user_config != d.spec.config.user_config
            same_version = spec.version == d.spec.version
            d.spec = spec
            d.failed, d.start_failures, d.message = False, 0, ""
            if cfg.autoscaling_config is not None:
                d.decider = ScaleDecider(cfg.autoscaling_config)
                a = cfg.autoscaling_config
                d.target = max(a.min_replicas, min(a.max_replicas, d.target))
            else:
                d.decider = None
                d.target = cfg.num_replicas
            if same_version and user_config_changed:
                for r in d.of(current=True, states=(RUNNING, STARTING)):
                    self._spawn(self.manager.reconfigure(d, r))
        self._bump(key)

    def _delete_deployment(self, key: str) -> None:
        d = self.deps.get(key)
        if d is not None:
            d.deleting = True
            d.target = 0
            self._bump(key)

    async def delete_application(self, name: str) -> None:
        self._ensure_loop()
        app = self.apps.get(name)
        if app is None:
            return
        app.deleting = True
        for dep in app.deployments:
            self._delete_deployment(deployment_key(name, dep))
        self._bump(ROUTES_KEY)

    async def app_info(self, name: str) -> dict[str, Any] | None:
        app = self.apps.get(name)
        if app is None:
            return None
        return {"ingress": app.ingress, "route_prefix": app.route_prefix}

    async def wait_for_app(self, name: str, timeout_s: float) -> dict[str, Any]:
        """Wait until the app runs, failed, or is gone; return its status record."""
        self._ensure_loop()
        deadline = time.monotonic() + timeout_s
        while True:
            st = self._status().get("applications", {}).get(name)
            if (
                st is None
                or st["status"] in ("RUNNING", "DEPLOY_FAILED")
                or time.monotonic() > deadline
            ):
                return st or {"status": "NOT_STARTED", "message": "", "deployments": {}}
            await asyncio.sleep(TICK_S)

    async def status(self) -> dict[str, Any]:
        self._ensure_loop()
        return self._status()

    def _status(self) -> dict[str, Any]:
        apps = {}
        for app in self.apps.values():
            deps: dict[str, dict[str, Any]] = {}
            for dep in app.deployments:
                d = self.deps.get(deployment_key(app.name, dep))
                if d is None:
                    continue
                deps[dep] = {
                    "status": d.status(),
                    "message": d.message,
                    "replica_states": d.replica_states(),
                    "target": d.target,
                }
            statuses = {v["status"] for v in deps.values()}
            if app.deleting:
                status = "DELETING"
            elif "DEPLOY_FAILED" in statuses:
                status = "DEPLOY_FAILED"
            elif app.deploying:
                status = "DEPLOYING"
            elif "UNHEALTHY" in statuses:
                status = "UNHEALTHY"
            else:
                status = "RUNNING"
            msg = "; ".join(str(v["message"]) for v in deps.values() if v["message"])
            apps[app.name] = {
                "status": status,
                "message": msg,
                "last_deployed_time_s": app.deployed_at,
                "deployments": deps,
                "route_prefix": app.route_prefix,
            }
        proxies = {}
        if self.proxy is not None:
            proxies["head"] = "HEALTHY"
        return {"applications": apps, "proxies": proxies}

    # ---- the proxy ----

    async def ensure_proxy(self, http_options: dict[str, Any] | None = None) -> str:
        self._ensure_loop()
        if self.proxy is None:
            if http_options:
                self.http = HTTPOptions.coerce(http_options)
            h = self.http
            self.proxy = (
                ember.remote(ServeProxy)
                .options(
                    name=PROXY_NAME,
                    namespace=NAMESPACE,
                    lifetime="detached",
                    num_cpus=0,
                    max_concurrency=1000,
                    max_restarts=-1,
                )
                .remote(
                    h.host,
                    h.port,
                    h.root_path,
                    h.keep_alive_timeout_s,
                    h.request_timeout_s,
                )
            )
            try:
                await self.proxy.ready.remote()
            except Exception:
                with contextlib.suppress(Exception):
                    ember.kill(self.proxy)
                self.proxy = None
                raise
        return f"{self.http.host}:{self.http.port}"

    async def shutdown(self) -> None:
        self._ensure_loop()
        for name in list(self.apps):
            await self.delete_application(name)
        deadline = time.monotonic() + 60
        while self.deps and time.monotonic() < deadline:
            await asyncio.sleep(TICK_S)
        for d in self.deps.values():
            for r in d.replicas.values():
                with contextlib.suppress(Exception):
                    ember.kill(r.actor)
        if self.proxy is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.proxy.shutdown.remote(), 5)
            with contextlib.suppress(Exception):
                ember.kill(self.proxy)
            self.proxy = None

    # ---- reconciliation ----

    async def _run(self) -> None:
        while True:
            try:
                self._reconcile(time.monotonic())
            except Exception:
                logger.exception("serve controller: reconcile failed")
            await asyncio.sleep(TICK_S)

    def _reconcile(self, now: float) -> None:
        for key, d in list(self.deps.items()):
            self.manager.step(d, now)
            if d.deleting and not d.replicas:
                del self.deps[key]
                self._bump(key)
        for name, app in list(self.apps.items()):
            deps = [self.deps.get(deployment_key(name, dep)) for dep in app.deployments]
            if app.deleting and all(d is None for d in deps):
                del self.apps[name]
            elif app.deploying and all(
                d is not None and d.status() == "HEALTHY" for d in deps
            ):
                app.deploying = False
