"""One submitted job's supervision, from PENDING to its end (see ``manager.py``).

:class:`Runner` holds what every job's supervision needs (the store, the
package store, the control link, the token, the session folder, this
server's identity); :meth:`Runner.supervise` is the task each submission
runs under: wait for the entrypoint's resources, unpack its packages, start
it, link its driver, record its end. A record already terminal (a stop that
won, another server's recovery, a delete) is never written over.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from ember.common.private_files import ensure_private_dirs
from ember.dashboard.jobs import driver
from ember.dashboard.jobs.records import (
    JobRecord,
    missing_resources,
    wanted_resources,
)
from ember.dashboard.jobs.store import ControlLink, JobStore, PackageStore
from ember.protocol.messages import Empty, ListStateRequest
from ember.rpc.errors import RpcError
from ember.runtime_env import packing
from ember.runtime_env.fields import is_uri

logger = logging.getLogger(__name__)

#: how often a waiting or running job looks at the cluster again
POLL_S = 0.5
#: a running job looks for its driver every POLL_S for this long, then every LINK_LATER_S
LINK_FAST_FOR_S = 30.0
LINK_LATER_S = 5.0


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass
class Run:
    """A job this server supervises."""

    task: asyncio.Task[Any] | None = None
    proc: subprocess.Popen[bytes] | None = None
    stopping: bool = False
    wake: asyncio.Event = field(default_factory=asyncio.Event)


async def driver_rows(link: ControlLink) -> list[dict[str, Any]]:
    """The state API's job rows (drivers) of the cluster."""
    reply, _ = await link.call(
        "control.list_state", ListStateRequest(resource="jobs", limit=10_000)
    )
    return [dict(r) for r in reply.rows]


class Runner:
    """Runs submitted jobs' entrypoints (see the module docstring)."""

    def __init__(
        self,
        *,
        link: ControlLink,
        store: JobStore,
        packages: PackageStore,
        control_address: str,
        token: str,
        session_dir: str,
        owner: str,
    ) -> None:
        self.link = link
        self.store = store
        self.packages = packages
        self.control_address = control_address
        self._token = token
        self.session_dir = session_dir
        self.owner = owner

    def log_file(self, submission_id: str) -> str:
        return driver.log_path(self.session_dir, submission_id)

    async def _driver_rows(self) -> list[dict[str, Any]]:
        return await driver_rows(self.link)

    async def supervise(self, rec: JobRecord, run: Run) -> None:
        try:
            await self._run(rec, run)
        except Exception as exc:
            logger.exception("job %s failed to run", rec.submission_id)
            fresh = await self.store.get(rec.submission_id)
            if fresh is not None and not fresh.terminal:
                fresh.finish(
                    "FAILED",
                    now_ms(),
                    f"the job could not be started: {type(exc).__name__}: {exc}",
                    error_type="JOB_ENTRYPOINT_COMMAND_START_ERROR",
                )
                await self.store.put(fresh)

    async def _run(self, rec: JobRecord, run: Run) -> None:
        if not await self._wait_for_resources(rec, run):
            return
        cwd, paths = await self._prepare_env(rec)
        if run.stopping:
            return await self._end(rec, "STOPPED", None)
        env = driver.driver_env(
            dict(os.environ),
            control_address=self.control_address,
            token=self._token,
            submission_id=rec.submission_id,
            runtime_env=rec.runtime_env,
            metadata=rec.metadata,
            module_paths=paths,
        )
        try:
            run.proc = driver.spawn(
                rec.entrypoint, env, cwd, self.log_file(rec.submission_id)
            )
        except OSError as exc:
            msg = f"Failed to start the entrypoint command: {exc}"
            return await self._end(
                rec, "FAILED", None, msg, "JOB_ENTRYPOINT_COMMAND_START_ERROR"
            )
        rec.start(run.proc.pid, self.owner, now_ms())
        await self.store.put(rec)
        code = await self._watch(rec, run, run.proc)
        driver.signal_group(run.proc.pid, signal.SIGKILL)  # what it left running
        if run.stopping:
            return await self._end(rec, "STOPPED", code)
        if code == 0:
            return await self._end(rec, "SUCCEEDED", 0)
        tail = driver.read_tail(self.log_file(rec.submission_id))
        msg = f"Job entrypoint command failed with exit code {code}" + (
            ", last available logs (truncated to 20,000 chars):\n" + tail
            if tail
            else ". No logs available."
        )
        await self._end(rec, "FAILED", code, msg, "JOB_ENTRYPOINT_COMMAND_ERROR")

    async def _end(
        self,
        rec: JobRecord,
        status: str,
        code: int | None,
        message: str | None = None,
        error_type: str | None = None,
    ) -> None:
        fresh = await self.store.get(rec.submission_id)
        if fresh is None or fresh.terminal:  # deleted, or failed by another server
            return
        fresh.finish(status, now_ms(), message, code, error_type)
        await self.store.put(fresh)
        logger.info("job %s: %s (exit code %s)", rec.submission_id, status, code)

    async def _wait_for_resources(self, rec: JobRecord, run: Run) -> bool:
        want = wanted_resources(rec)
        said = ""
        while want and not run.stopping:
            reply, _ = await self.link.call("control.get_nodes", Empty())
            totals = [dict(n.resources) for n in reply.nodes if n.alive]
            short = missing_resources(want, totals)
            if not short:
                break
            text = (
                f"Job has not started yet: no node of the cluster has the entrypoint's "
                f"resources {want} (missing {short}); it waits for such a node."
            )
            if text != said:
                fresh = await self.store.get(rec.submission_id)
                if fresh is None or fresh.terminal:
                    return False
                fresh.message = rec.message = said = text
                await self.store.put(fresh)
            run.wake.clear()
            try:
                await asyncio.wait_for(run.wake.wait(), POLL_S * 2)
            except TimeoutError:
                pass
        if run.stopping:
            await self._end(rec, "STOPPED", None)
            return False
        return True

    async def _prepare_env(self, rec: JobRecord) -> tuple[str, list[str]]:
        """The entrypoint's folder and ``PYTHONPATH`` entries from its packages."""
        env = rec.runtime_env
        if not env.get("working_dir") and not env.get("py_modules"):
            return os.getcwd(), []
        base = ensure_private_dirs(
            self.session_dir, "runtime_resources", "jobs", rec.submission_id
        )
        cwd = os.getcwd()
        wd = env.get("working_dir")
        if wd and is_uri(wd):
            cwd = os.path.join(base, "working_dir")
            await self._unpack(wd, cwd)
        paths = []
        for i, uri in enumerate(env.get("py_modules") or []):
            target = os.path.join(base, f"py_modules_{i}")
            await self._unpack(uri, target)
            paths.append(target)
        return cwd, paths

    async def _unpack(self, uri: str, target: str) -> None:
        data = await self.packages.fetch(uri)
        os.makedirs(target, mode=0o700, exist_ok=True)
        await asyncio.to_thread(packing.unpack, data, target)

    async def _watch(
        self, rec: JobRecord, run: Run, proc: subprocess.Popen[bytes]
    ) -> int:
        """Wait for the entrypoint to exit (its code), linking its driver meanwhile:
        often at first, then every ``LINK_LATER_S`` (an entrypoint that never
        starts a driver is not asked about forever at the first pace)."""
        exited = _exit_event(proc)
        started = time.monotonic()
        next_link = 0.0
        try:
            while (code := proc.poll()) is None:
                now = time.monotonic()
                if rec.job_id is None and now >= next_link:
                    await self._link_driver(rec, proc.pid)
                    pace = POLL_S if now - started < LINK_FAST_FOR_S else LINK_LATER_S
                    next_link = now + pace
                try:
                    await asyncio.wait_for(exited.wait(), POLL_S)
                except TimeoutError:
                    pass
            return code
        finally:
            exited.close()

    async def _link_driver(self, rec: JobRecord, pgid: int) -> None:
        try:
            rows = await self._driver_rows()
        except (RpcError, OSError):  # the head may be restarting; try again later
            return
        for row in rows:
            pid = str((row.get("driver_info") or {}).get("pid") or "")
            if (
                pid.isdigit()
                and row.get("status") == "RUNNING"
                and _in_group(int(pid), pgid)
            ):
                fresh = await self.store.get(rec.submission_id)
                if fresh is None or fresh.terminal:
                    return
                fresh.job_id = rec.job_id = row.get("job_id")
                fresh.driver_info = rec.driver_info = row.get("driver_info")
                fresh.driver_node_id = row.get("driver_node_id")
                await self.store.put(fresh)
                return


def _in_group(pid: int, pgid: int) -> bool:
    try:
        return os.getpgid(pid) == pgid
    except (ProcessLookupError, PermissionError):
        return False


class _ExitEvent:
    """Set when a child process exits: its pidfd on the event loop (Linux >= 5.3),
    else nothing (the caller's wait times out and it polls)."""

    def __init__(self, pid: int) -> None:
        self._event = asyncio.Event()
        self._fd = -1
        try:
            self._fd = os.pidfd_open(pid)
        except (AttributeError, OSError):
            return
        asyncio.get_running_loop().add_reader(self._fd, self._event.set)

    async def wait(self) -> None:
        await self._event.wait()

    def close(self) -> None:
        if self._fd >= 0:
            asyncio.get_running_loop().remove_reader(self._fd)
            os.close(self._fd)
            self._fd = -1


def _exit_event(proc: subprocess.Popen[bytes]) -> _ExitEvent:
    return _ExitEvent(proc.pid)
