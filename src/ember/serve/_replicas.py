"""The controller's replica lifecycle: start, roll, stop (drain), health-check, autoscale.

:class:`ReplicaManager` changes :class:`~ember.serve._state.DeploymentRecord`s and tells
the controller through ``bump(key)`` whenever a deployment's routing set changed;
``spawn`` runs its calls to replicas as tasks of the controller's loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import ember
from ember.serve._common import NAMESPACE, deployment_key, replica_actor_name
from ember.serve._state import (
    RUNNING,
    STARTING,
    STOPPING,
    DeploymentRecord,
    ReplicaRecord,
)
from ember.serve.replica import ServeReplica

__all__ = ["ReplicaManager"]


class ReplicaManager:
    """Brings each deployment's replicas to its target, one reconcile step at a time."""

    def __init__(
        self,
        bump: Callable[[str], None],
        spawn: Callable[[Coroutine[Any, Any, Any]], None],
    ) -> None:
        self.bump = bump
        self.spawn = spawn

    def step(self, d: DeploymentRecord, now: float) -> None:
        """One reconcile step: autoscale, scale/roll, and the health checks that are due."""
        self.autoscale(d, now)
        self.scale(d)
        period = d.spec.config.health_check_period_s
        for r in d.of(current=True, states=(RUNNING,)) + d.of(
            current=False, states=(RUNNING,)
        ):
            if not r.checking and now - r.last_health >= period:
                self.spawn(self.health_check(d, r))

    def _key(self, d: DeploymentRecord) -> str:
        return deployment_key(d.spec.app_name, d.spec.name)

    async def reconfigure(self, d: DeploymentRecord, r: ReplicaRecord) -> None:
        try:
            await r.actor.reconfigure.remote(d.spec.config.user_config)
        except Exception as e:  # noqa: BLE001 - shown in serve.status()
            d.message = f"reconfigure failed: {e}"

    def autoscale(self, d: DeploymentRecord, now: float) -> None:
        a = d.spec.config.autoscaling_config
        if d.decider is None or a is None or d.deleting:
            return
        if now - d.last_metrics < a.metrics_interval_s:
            return
        d.last_metrics = now
        stale = now - max(2 * a.metrics_interval_s, 1.0) - 1.0
        d.handle_load = {k: v for k, v in d.handle_load.items() if v[0] >= stale}
        d.decider.record(now, sum(v for _, v in d.handle_load.values()))
        d.target = d.decider.decide(now, d.target)

    def scale(self, d: DeploymentRecord) -> None:
        target = 0 if d.deleting else d.target
        cur = d.of(current=True, states=(STARTING, RUNNING))
        if not d.failed:
            for _ in range(target - len(cur)):
                self._start_replica(d)
        if len(cur) > target:
            extra = sorted(
                cur, key=lambda r: (r.state == RUNNING, r.started_at), reverse=False
            )
            for r in extra[: len(cur) - target]:
                self._stop_replica(d, r)
        for r in d.of(current=False, states=(STARTING,)):
            self._stop_replica(d, r)
        old = d.of(current=False, states=(RUNNING,))
        running_cur = len(d.of(current=True, states=(RUNNING,)))
        excess = len(old) if target == 0 else running_cur + len(old) - target
        for r in old[: max(0, min(excess, len(old)))]:
            self._stop_replica(d, r)

    def _start_replica(self, d: DeploymentRecord) -> None:
        spec = d.spec
        rid = uuid.uuid4().hex[:8]
        cfg = spec.config
        actor = (
            ember.remote(ServeReplica)
            .options(
                name=replica_actor_name(spec.app_name, spec.name, rid),
                namespace=NAMESPACE,
                lifetime="detached",
                max_concurrency=cfg.max_ongoing_requests + 100,
                **cfg.ray_actor_options,
            )
            .remote(rid, spec)
        )
        r = d.replicas[rid] = ReplicaRecord(rid, actor, spec.version)
        self.spawn(self._initialize(d, r))

    async def _initialize(self, d: DeploymentRecord, r: ReplicaRecord) -> None:
        try:
            await r.actor.initialize.remote()
        except Exception as e:  # noqa: BLE001 - counted, shown in serve.status()
            d.replicas.pop(r.rid, None)
            with contextlib.suppress(Exception):
                ember.kill(r.actor)
            if r.version == d.spec.version:
                d.start_failures += 1
                d.message = f"A replica failed to start: {e}"
                if d.start_failures >= d.spec.config.start_failure_limit() and not d.of(
                    current=True, states=(RUNNING,)
                ):
                    d.failed = True
                    self.bump(self._key(d))
            return
        if r.state != STARTING:
            return
        r.state = RUNNING
        r.last_health = time.monotonic()
        d.start_failures = 0
        self.bump(self._key(d))

    def _stop_replica(self, d: DeploymentRecord, r: ReplicaRecord) -> None:
        was_running = r.state == RUNNING
        r.state = STOPPING
        self.bump(self._key(d))
        self.spawn(self._drain(d, r, was_running))

    async def _drain(
        self, d: DeploymentRecord, r: ReplicaRecord, graceful: bool
    ) -> None:
        cfg = d.spec.config
        if graceful:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(
                    r.actor.prepare_for_shutdown.remote(
                        cfg.graceful_shutdown_wait_loop_s,
                        cfg.graceful_shutdown_timeout_s,
                    ),
                    cfg.graceful_shutdown_wait_loop_s
                    + cfg.graceful_shutdown_timeout_s
                    + 5,
                )
        with contextlib.suppress(Exception):
            ember.kill(r.actor)
        d.replicas.pop(r.rid, None)

    async def health_check(self, d: DeploymentRecord, r: ReplicaRecord) -> None:
        r.checking = True
        try:
            await asyncio.wait_for(
                r.actor.check_health.remote(), d.spec.config.health_check_timeout_s
            )
            r.last_health = time.monotonic()
        except Exception as e:  # noqa: BLE001 - any failure: replace the replica
            if r.state == RUNNING and d.replicas.get(r.rid) is r:
                d.replicas.pop(r.rid)
                d.message = f"Replica {r.rid} failed its health check: {e}"
                with contextlib.suppress(Exception):
                    ember.kill(r.actor)
                self.bump(self._key(d))
        finally:
            r.checking = False
