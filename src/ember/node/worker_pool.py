"""Spawn, hand out, reap and stop worker processes.

Data flow::

    lease manager --take(env_key)--> WorkerPool --spawn--> python -m ember.worker
                                        ^                         |
                                        +-- node.register_worker -+  (worker connects back)
    proc.wait() --exited--> WorkerPool._reap --on_exit(handle)--> daemon (leases, actors)

A worker serves one lease at a time, or hosts one actor for its whole life.
Workers are keyed by ``env_key`` (the runtime env they were started with).
A worker of a runtime env that needs setup (``node/runtime_envs.py``) starts
only once its env is ready, from the env's interpreter (exec, not the fork
server, when that is not the daemon's own), cwd and ``sys.path``; a failed
setup raises ``RuntimeEnvSetupError`` from :meth:`WorkerPool.spawn`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from collections import deque
from collections.abc import Callable
from typing import Any

from ember.common.aio import Supervisor
from ember.exceptions import RuntimeEnvSetupError
from ember.node.launcher import ExecLauncher, Launcher
from ember.node.runtime_envs import PreparedEnv, RuntimeEnvs
from ember.protocol.messages import Address, ExitRequest, WorkerDeathReply
from ember.rpc.connection import Connection

logger = logging.getLogger(__name__)


class WorkerHandle:
    """One worker process as the daemon sees it."""

    def __init__(self, pid: int, exited: asyncio.Future[int], env_key: str) -> None:
        self.pid = pid
        #: resolves to the exit code when the process has exited
        self.exited = exited
        self.env_key = env_key
        self.worker_id = b""
        self.address: Address | None = None
        self.conn: Connection | None = None
        self.state = "starting"  # starting | idle | leased | actor | dead
        self.lease_id = 0
        self.idle_since = 0.0
        #: set when this daemon killed it for a reason its lease holder must hear
        #: (the memory monitor); otherwise the death is read from the exit code
        self.death: WorkerDeathReply | None = None
        self.registered: asyncio.Future[None] = (
            asyncio.get_running_loop().create_future()
        )
        #: the runtime env it was started in (its references are dropped at exit)
        self.prepared: PreparedEnv | None = None


class WorkerPool:
    """The node's worker processes."""

    def __init__(
        self,
        *,
        argv: list[str],
        env: dict[str, str],
        log_dir: str,
        on_exit: Callable[[WorkerHandle], None],
        on_idle: Callable[[], None],
        launcher: Launcher,
        envs: RuntimeEnvs | None = None,
    ) -> None:
        self._launcher = launcher
        self.envs = envs
        self._exec: dict[str, ExecLauncher] = {}
        self._argv = argv
        self._env = env
        self._log_dir = log_dir
        self._on_exit = on_exit
        self._on_idle = on_idle
        self.by_pid: dict[int, WorkerHandle] = {}
        self.idle: dict[str, deque[WorkerHandle]] = {}
        self.starting: dict[str, int] = {}
        self._sup = Supervisor("worker-pool")
        self.closing = False
        self._spawned = 0

    async def spawn(
        self,
        env_key: str,
        env_vars: dict[str, str],
        runtime_env: dict[str, Any] | None = None,
    ) -> WorkerHandle:
        env = dict(self._env)
        env.update(env_vars)
        self.starting[env_key] = self.starting.get(env_key, 0) + 1
        self._spawned += 1
        log = os.path.join(self._log_dir, f"worker-{os.getpid()}-{self._spawned}.log")
        prepared = None
        launcher = self._launcher
        try:
            if runtime_env and self.envs is not None:
                prepared = await self.envs.prepare(runtime_env)
                env.update(prepared.environ(env))
                if prepared.python:
                    launcher = self._exec.setdefault(
                        prepared.python, ExecLauncher(prepared.python)
                    )
            try:
                pid, exited = await launcher.launch(
                    [*self._argv, "--env-key", env_key], env, log
                )
            except OSError as exc:
                if prepared is None or not prepared.python:
                    raise
                raise RuntimeEnvSetupError(
                    f"cannot start a worker with {prepared.python}: {exc}"
                ) from exc
        except BaseException:
            self.starting[env_key] -= 1
            if prepared is not None and self.envs is not None:
                self.envs.release(prepared)
            raise
        h = WorkerHandle(pid, exited, env_key)
        h.prepared = prepared
        self.by_pid[pid] = h
        self._sup.spawn(self._reap(h), name=f"reap-{pid}")
        return h

    def registered(
        self, pid: int, worker_id: bytes, address: Address, conn: Connection
    ) -> None:
        h = self.by_pid.get(pid)
        if h is None:
            raise ValueError(f"pid {pid} is not a worker this daemon started")
        h.worker_id, h.address, h.conn = worker_id, address, conn
        self.starting[h.env_key] -= 1
        self.make_idle(h)
        if not h.registered.done():
            h.registered.set_result(None)

    def make_idle(self, h: WorkerHandle) -> None:
        if h.state == "dead":
            return
        h.state = "idle"
        h.lease_id = 0
        h.idle_since = asyncio.get_running_loop().time()
        self.idle.setdefault(h.env_key, deque()).append(h)
        self._on_idle()

    def take_idle(self, env_key: str) -> WorkerHandle | None:
        q = self.idle.get(env_key)
        while q:
            h = q.popleft()
            if h.state == "idle":
                return h
        return None

    def kill(
        self, h: WorkerHandle, reason: str, death: WorkerDeathReply | None = None
    ) -> None:
        """SIGKILL ``h``; ``death`` (if given) is the cause its lease holder is told."""
        if h.state == "dead":
            return
        if death is not None and h.death is None:
            h.death = death
        logger.info("stopping worker pid=%d: %s", h.pid, reason)
        try:
            os.kill(h.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def ask_exit(self, h: WorkerHandle) -> None:
        if h.conn is not None and not h.conn.is_closed():
            h.conn.notify("worker.exit", ExitRequest(force=False, reason="idle"))
        else:
            self.kill(h, "idle")

    async def _reap(self, h: WorkerHandle) -> None:
        code = await h.exited
        was = h.state
        if was == "starting":
            self.starting[h.env_key] -= 1
        h.state = "dead"
        self.by_pid.pop(h.pid, None)
        q = self.idle.get(h.env_key)
        if q and h in q:
            q.remove(h)
        if h.prepared is not None and self.envs is not None:
            self.envs.release(h.prepared)
        if not self.closing and was != "idle":
            logger.info("worker pid=%d exited with code %s (was %s)", h.pid, code, was)
        if not h.registered.done():
            h.registered.set_exception(
                RuntimeError(f"worker exited with code {code} at start")
            )
            h.registered.exception()
        self._on_exit(h)

    def trim_idle(self, keep: int, idle_timeout_s: float) -> None:
        now = asyncio.get_running_loop().time()
        total_idle = sum(len(q) for q in self.idle.values())
        for q in self.idle.values():
            for h in list(q):
                if total_idle <= keep:
                    return
                if h.state == "idle" and now - h.idle_since > idle_timeout_s:
                    q.remove(h)
                    h.state = "exiting"
                    self.ask_exit(h)
                    total_idle -= 1

    async def close(self) -> None:
        self.closing = True
        if self.envs is not None:
            await self.envs.close()
        for h in list(self.by_pid.values()):
            self.kill(h, "node shutting down")
        procs = [h.exited for h in list(self.by_pid.values())]
        if procs:
            # (The fork server ends each worker's session before it reports the
            # exit: ember.common.process_tree.) A straggler must not stop the
            # rest of the daemon's close (arena, socket): log it and go on.
            _, late = await asyncio.wait(procs, timeout=5)
            if late:
                logger.warning("%d worker(s) did not exit within 5 s", len(late))
        self._sup.close()

    @staticmethod
    def death_of(h: WorkerHandle) -> WorkerDeathReply:
        """Why ``h`` died: the cause this daemon gave it, else its exit status."""
        if h.death is not None:
            return h.death
        if not h.exited.done() or h.exited.cancelled():
            return WorkerDeathReply(message="its cause is unknown to its node")
        code = h.exited.result()
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = str(-code)
            return WorkerDeathReply(
                kind="signal", signal=name, exit_code=code, message=describe_exit(code)
            )
        return WorkerDeathReply(
            kind="exit", exit_code=code, message=describe_exit(code)
        )

    def statistics(self) -> dict[str, Any]:
        return {
            "workers": len(self.by_pid),
            "idle": sum(1 for h in self.by_pid.values() if h.state == "idle"),
        }


def describe_exit(code: int) -> str:
    """An exit status as words: "killed by signal SIGSEGV", "exit code 3"."""
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
