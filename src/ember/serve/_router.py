"""The per-process Serve client: one event-loop thread with a router per deployment.

Handles in a driver, a replica or the proxy all submit to this loop. Each
:class:`DeploymentRouter` keeps the deployment's running replicas (long-polled from
the controller), picks one with :class:`~ember.serve._choice.ReplicaChooser`, queues
requests while every replica is at ``max_ongoing_requests`` and refuses them with
:class:`BackPressureError` beyond ``max_queued_requests``.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Coroutine
from typing import Any

import ember
from ember.serve._choice import ReplicaChooser
from ember.serve._common import CONTROLLER_NAME, NAMESPACE
from ember.serve.exceptions import (
    BackPressureError,
    DeploymentUnavailableError,
    RayServeException,
)

__all__ = ["DeploymentRouter", "ServeClient"]

#: how long one long poll waits for a change before it is asked again
LONG_POLL_TIMEOUT_S = 5.0
METRICS_TICK_S = 0.1


def get_controller() -> Any:
    try:
        return ember.get_actor(CONTROLLER_NAME, namespace=NAMESPACE)
    except ValueError:
        raise RayServeException(
            "Serve is not running on this cluster: call serve.start() or serve.run() first."
        ) from None


def _cluster_identity() -> str | None:
    """Which cluster this process is connected to (a new init means new replicas)."""
    if not ember.is_initialized():
        return None
    return str(ember.get_runtime_context().get_node_id())


class DeploymentRouter:
    """Assigns one deployment's requests to its replicas (lives on the client's loop)."""

    def __init__(self, client: ServeClient, key: str) -> None:
        self.client = client
        self.key = key
        self.chooser = ReplicaChooser()
        self.actors: dict[str, Any] = {}
        self.max_queued = -1
        self.status = "unknown"
        self.metrics_interval_s: float | None = None
        #: replica id -> the multiplexed model ids it holds
        self.models: dict[str, list[str]] = {}
        self.last_push = 0.0
        self.waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self.queued = 0
        #: set once the first snapshot arrived (until then nothing is known)
        self.ready = asyncio.Event()

    def apply(self, snap: dict[str, Any]) -> None:
        self.status = snap["status"]
        self.actors = dict(snap["replicas"])
        self.chooser.set_replicas(self.actors, snap["max_ongoing"])
        self.max_queued = snap["max_queued"]
        self.metrics_interval_s = snap.get("metrics_interval_s")
        self.models = snap.get("models", {})
        self.ready.set()
        self._wake(all_=True)

    def _wake(self, all_: bool = False) -> None:
        while self.waiters:
            fut = self.waiters.popleft()
            if not fut.done():
                fut.set_result(None)
                if not all_:
                    return

    async def assign(self, model_id: str = "") -> tuple[str, Any]:
        """A replica with room for one more request, waiting in line when all are full."""
        await self.ready.wait()
        pick = self._pick(model_id)
        if pick is not None:
            return pick
        if self.max_queued != -1 and self.queued >= self.max_queued:
            raise BackPressureError(self.queued, self.max_queued)
        self.queued += 1
        try:
            while True:
                fut = asyncio.get_running_loop().create_future()
                self.waiters.append(fut)
                await fut
                pick = self._pick(model_id)
                if pick is not None:
                    return pick
        finally:
            self.queued -= 1

    def _pick(self, model_id: str) -> tuple[str, Any] | None:
        if self.status in ("deleted", "failed"):
            raise DeploymentUnavailableError(self.key)
        prefer = (
            [r for r, ids in self.models.items() if model_id in ids] if model_id else ()
        )
        rid = self.chooser.choose(prefer)
        return None if rid is None else (rid, self.actors[rid])

    def release(self, rid: str) -> None:
        self.chooser.done(rid)
        self._wake()

    def retired(self, rid: str) -> bool:
        """True when the controller took this replica out of the set (a planned stop)."""
        return rid not in self.actors

    def replica_failed(self, rid: str) -> None:
        """A call found the replica dead: stop using it and tell the controller."""
        if rid in self.actors:
            self.actors.pop(rid)
            self.chooser.remove(rid)
            with contextlib.suppress(Exception):
                self.client.controller().report_replica_failure.remote(self.key, rid)

    def load(self) -> int:
        return self.queued + self.chooser.total_ongoing()


class ServeClient:
    """The process's Serve client: its loop thread, routers and long-poll subscriptions."""

    _instance: ServeClient | None = None
    _lock = threading.Lock()

    @classmethod
    def get(cls) -> ServeClient:
        """This process's client; a new one after ember was shut down and started again."""
        ident = _cluster_identity()
        with cls._lock:
            inst = cls._instance
            if inst is not None and inst.ident != ident:
                cls._instance = None
                inst.loop.call_soon_threadsafe(inst._close)
            if cls._instance is None:
                cls._instance = cls(ident)
            return cls._instance

    @classmethod
    def reset(cls) -> None:
        """Forget routers and the controller (after serve.shutdown)."""
        with cls._lock:
            inst, cls._instance = cls._instance, None
        if inst is not None:
            inst.loop.call_soon_threadsafe(inst._close)

    def _close(self) -> None:
        tasks = [t for t in asyncio.all_tasks(self.loop) if not t.done()]
        for t in tasks:
            t.cancel()

        async def finish() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)
            self.loop.stop()

        self.loop.create_task(finish())

    def __init__(self, ident: str | None = None) -> None:
        self.ident = ident
        self.client_id = uuid.uuid4().hex
        self.loop = asyncio.new_event_loop()
        self.routers: dict[str, DeploymentRouter] = {}
        self.watchers: dict[str, list[Callable[[dict[str, Any]], None]]] = {}
        self.versions: dict[str, int] = {}
        self._controller: Any = None
        self._poller: asyncio.Task[None] | None = None
        self._thread = threading.Thread(
            target=self.loop.run_forever, name="ember-serve-router", daemon=True
        )
        self._thread.start()

    def controller(self) -> Any:
        if self._controller is None:
            self._controller = get_controller()
        return self._controller

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    # ---- on the loop thread ----

    def router(self, key: str) -> DeploymentRouter:
        r = self.routers.get(key)
        if r is None:
            r = self.routers[key] = DeploymentRouter(self, key)
            self.watch(key, r.apply)
        return r

    def watch(self, key: str, callback: Callable[[dict[str, Any]], None]) -> None:
        """Call ``callback`` with each snapshot of ``key`` (now, and after every change)."""
        self.watchers.setdefault(key, []).append(callback)
        self.loop.create_task(self._fetch(key))
        if self._poller is None:
            self._poller = self.loop.create_task(self._poll_forever())
            self.loop.create_task(self._push_metrics_forever())

    def _deliver(self, key: str, version: int, snap: dict[str, Any]) -> None:
        if version < self.versions.get(key, -1):
            return
        self.versions[key] = version
        for cb in self.watchers.get(key, ()):
            cb(snap)

    async def _fetch(self, key: str) -> None:
        version, snap = await self.controller().get_snapshot.remote(key)
        self._deliver(key, version, snap)

    async def _poll_forever(self) -> None:
        while True:
            if not ember.is_initialized():
                return  # the driver shut ember down: never start it again from here
            known = {k: self.versions.get(k, -1) for k in self.watchers}
            try:
                changed = await self.controller().listen_for_change.remote(
                    known, LONG_POLL_TIMEOUT_S
                )
            except Exception:  # noqa: BLE001 - any failure: ask again
                # the controller is gone or restarting: look it up again shortly
                self._controller = None
                await asyncio.sleep(0.2)
                continue
            for key, (version, snap) in changed.items():
                self._deliver(key, version, snap)

    async def _push_metrics_forever(self) -> None:
        while True:
            await asyncio.sleep(METRICS_TICK_S)
            if not ember.is_initialized():
                return
            now = time.time()
            for r in list(self.routers.values()):
                iv = r.metrics_interval_s
                if iv is None or now - r.last_push < iv:
                    continue
                r.last_push = now
                with contextlib.suppress(Exception):
                    self.controller().record_handle_metrics.remote(
                        r.key, self.client_id, r.load(), now
                    )
