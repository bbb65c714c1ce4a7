"""A node's runtime environments: fetch, unpack and build them once, hand them to workers.

Data flow::

    WorkerPool.spawn(env) --prepare(env)--> RuntimeEnvs
        working_dir / py_modules URI --control.get_package--> unpack
            -> <session>/runtime_resources/{working_dir,py_modules}/<package>/
        pip / uv spec --runtime_env.virtualenv.build--> <session>/runtime_resources/pip/<hash>/
    <-- PreparedEnv(python, cwd, paths)   (the worker's interpreter, cwd, sys.path)
    worker exits --release(prepared)--> reference counts (runtime_env/cache.py)

Each resource (a package, a pip env) is built once per node: concurrent
requests share one build (an ``asyncio`` future per resource), and daemons
sharing a session folder on one machine take a file lock per resource, so a
second daemon finds the first one's result. Built resources are cached
across jobs; when more than ``EMBER_RUNTIME_ENV_CACHE_SIZE`` (default 10)
of one kind are unused, the least recently used are deleted. The whole
setup of one env is bounded by its ``config.setup_timeout_seconds``;
any failure (a fetch, a bad package, pip) raises ``RuntimeEnvSetupError``
naming the env, so the lease is answered with the error and no worker
starts in a half-built env.
"""

from __future__ import annotations

import asyncio
import fcntl
import hashlib
import json
import logging
import os
import shutil
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from ember.common.private_files import ensure_private_dirs
from ember.exceptions import RuntimeEnvSetupError
from ember.protocol.messages import GetPackageRequest
from ember.runtime_env import packing, virtualenv
from ember.runtime_env.cache import EnvCache
from ember.runtime_env.runtime_env import setup_timeout_s
from ember.runtime_env.worker_env import CWD_ENV, PATHS_ENV

logger = logging.getLogger(__name__)

#: fetch(uri) -> the package's bytes
Fetch = Callable[[str], Awaitable[bytes]]
KINDS = ("working_dir", "py_modules", "pip")


@dataclass
class PreparedEnv:
    """What a worker of one env starts with."""

    python: str = ""  # "" = the node's own interpreter (the fork server may fork it)
    cwd: str = ""
    paths: list[str] = field(default_factory=list)
    #: (kind, key) of every resource it holds a reference on
    held: list[tuple[str, str]] = field(default_factory=list)

    def environ(self, base: dict[str, str]) -> dict[str, str]:
        out: dict[str, str] = {}
        if self.cwd:
            out[CWD_ENV] = self.cwd
        if self.paths:
            out[PATHS_ENV] = os.pathsep.join(self.paths)
            old = base.get("PYTHONPATH", "")
            out["PYTHONPATH"] = os.pathsep.join([*self.paths, *([old] if old else [])])
        return out


def pip_key(field_name: str, spec: dict[str, Any], python: str) -> str:
    text = json.dumps([field_name, spec, python], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class _FileLock:
    """An exclusive flock on ``path`` (held in a thread: it may wait)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    async def __aenter__(self) -> None:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        await asyncio.to_thread(fcntl.flock, self.fd, fcntl.LOCK_EX)

    async def __aexit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


class RuntimeEnvs:
    """The runtime environments of one node."""

    def __init__(
        self, session_dir: str, fetch: Fetch, cache_size: int | None = None
    ) -> None:
        self._session_dir = session_dir
        self._fetch = fetch
        cap = int(os.environ.get("EMBER_RUNTIME_ENV_CACHE_SIZE", "10"))
        cap = cap if cache_size is None else cache_size
        self.caches = {k: EnvCache(cap) for k in KINDS}
        self._building: dict[tuple[str, str], asyncio.Future[str]] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self.builds = 0  # resources this daemon built (not found ready)

    def root(self, kind: str) -> str:
        return ensure_private_dirs(self._session_dir, "runtime_resources", kind)

    async def prepare(
        self, env: dict[str, Any], *, acquire: bool = True
    ) -> PreparedEnv:
        """Set ``env`` up (or find it set up); its workers' start settings.

        ``acquire``: count a reference for the worker about to start (to be
        dropped by :meth:`release`); False for an eager install."""
        timeout: float | None = None
        try:
            timeout = setup_timeout_s(env)
            return await asyncio.wait_for(self._prepare(env, acquire), timeout)
        except TimeoutError:
            raise RuntimeEnvSetupError(
                f"The runtime env {_describe(env)} was not set up within "
                f"setup_timeout_seconds={timeout}."
            ) from None
        except RuntimeEnvSetupError as exc:
            raise RuntimeEnvSetupError(
                f"runtime env {_describe(env)}: {exc.error_message}"
            ) from None
        except Exception as exc:
            raise RuntimeEnvSetupError(
                f"runtime env {_describe(env)}: {type(exc).__name__}: {exc}"
            ) from exc

    async def _prepare(self, env: dict[str, Any], acquire: bool) -> PreparedEnv:
        out = PreparedEnv()
        wd = env.get("working_dir")
        if wd:
            key = packing.package_name(wd)
            out.cwd = await self._once(
                "working_dir", key, partial(self._unpack, wd, "working_dir", key)
            )
            out.paths.append(out.cwd)
            out.held.append(("working_dir", key))
        for uri in env.get("py_modules") or []:
            key = packing.package_name(uri)
            path = await self._once(
                "py_modules", key, partial(self._unpack, uri, "py_modules", key)
            )
            out.paths.append(path)
            out.held.append(("py_modules", key))
        base = env.get("py_executable") or ""
        for name in ("pip", "uv"):
            spec = env.get(name)
            if spec:
                key = pip_key(name, spec, base or sys.executable)
                out.python = await self._once(
                    "pip", key, partial(self._build, name, spec, key, base)
                )
                out.held.append(("pip", key))
        if base and not out.python:
            out.python = base
        if acquire:
            for kind, key in out.held:
                self._evict(kind, self.caches[kind].acquire(key))
        else:
            out.held = []
        return out

    def start_eager(self, env: dict[str, Any]) -> None:
        """``node.prepare_runtime_env``: start :meth:`eager` in the background."""
        task = asyncio.get_running_loop().create_task(self.eager(env))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def eager(self, env: dict[str, Any]) -> None:
        """``config.eager_install``: set the job's env up before any task asks."""
        try:
            await self.prepare(env, acquire=False)
        except RuntimeEnvSetupError as exc:
            # the first task of the env will raise it to its caller
            logger.warning(
                "eager install of a runtime env failed: %s", exc.error_message
            )

    async def close(self) -> None:
        """Stop the builds in progress (their installers are killed)."""
        tasks = list(self._tasks)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def release(self, prepared: PreparedEnv) -> None:
        """A worker started with ``prepared`` exited."""
        for kind, key in prepared.held:
            self._evict(kind, self.caches[kind].release(key))

    async def _once(
        self, kind: str, key: str, make: Callable[[], Awaitable[str]]
    ) -> str:
        fut = self._building.get((kind, key))
        if fut is None:
            fut = asyncio.get_running_loop().create_future()
            self._building[(kind, key)] = fut

            async def run() -> None:
                try:
                    async with _FileLock(os.path.join(self.root(kind), key + ".lock")):
                        fut.set_result(await make())
                except asyncio.CancelledError:  # the daemon is closing
                    fut.cancel()
                    raise
                except Exception as exc:  # noqa: BLE001 (handed to every waiter)
                    fut.set_exception(exc)
                finally:
                    # a result stays cached on disk; a failure is tried again next time
                    self._building.pop((kind, key), None)

            task = asyncio.get_running_loop().create_task(run())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            # (a failure nobody awaits any more must not be logged as unretrieved)
            fut.add_done_callback(lambda f: f.cancelled() or f.exception())
        return await asyncio.shield(fut)

    async def _unpack(self, uri: str, kind: str, key: str) -> str:
        target = os.path.join(self.root(kind), key)
        marker = os.path.join(self.root(kind), key + virtualenv.READY)
        if os.path.exists(marker):
            return target
        data = await self._fetch(uri)
        shutil.rmtree(target, ignore_errors=True)
        os.makedirs(target, mode=0o700)
        await asyncio.to_thread(packing.unpack, data, target)
        with open(marker, "w"):
            pass
        self.builds += 1
        self._evict(kind, self.caches[kind].built(key))
        return target

    async def _build(
        self, name: str, spec: dict[str, Any], key: str, python: str
    ) -> str:
        folder = os.path.join(self.root("pip"), key)
        if virtualenv.is_ready(folder):
            return virtualenv.env_python(folder)
        logger.info("building the %s env %s for %s", name, key, spec.get("packages"))
        python_path = await virtualenv.build(folder, name, spec, python)
        self.builds += 1
        self._evict("pip", self.caches["pip"].built(key))
        return python_path

    def _evict(self, kind: str, keys: list[str]) -> None:
        for key in keys:
            if (kind, key) in self._building:
                continue
            root = self.root(kind)
            logger.info("removing the unused %s %s", kind, key)
            for suffix in (virtualenv.READY, ""):
                path = os.path.join(root, key + suffix)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                elif os.path.exists(path):
                    os.unlink(path)

    def statistics(self) -> dict[str, Any]:
        return {k: c.statistics() for k, c in self.caches.items()} | {
            "builds": self.builds
        }


def _describe(env: dict[str, Any]) -> str:
    shown = {k: v for k, v in env.items() if k != "config"}
    return json.dumps(shown, sort_keys=True, default=str)


def control_fetch(control: Callable[[], Any]) -> Fetch:
    """A Fetch reading packages from the control service's store, chunk by chunk
    (``control()``: the daemon's connection to it)."""

    async def call(method: str, request: Any) -> tuple[Any, Any]:
        conn = control()
        if conn is None:
            raise RuntimeEnvSetupError(
                "the node is not connected to the control service"
            )
        return await conn.call(method, request)

    async def fetch(uri: str) -> bytes:
        head, _ = await call("control.get_package", GetPackageRequest(uri=uri))
        if not head.found:
            raise RuntimeEnvSetupError(
                f"the package {uri} is not in the cluster's package store"
            )
        parts = []
        for i in range(head.chunks):
            reply, _ = await call(
                "control.get_package", GetPackageRequest(uri=uri, index=i)
            )
            parts.append(reply.data)
        data = b"".join(parts)
        if len(data) != head.size:
            raise RuntimeEnvSetupError(f"the package {uri} came back incomplete")
        return data

    return fetch
