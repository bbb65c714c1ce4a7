"""The job server's core: submit, supervise, stop, delete and find submitted jobs.

Theory of operation. :meth:`JobManager.submit` checks the request, stores a
PENDING record (``store.JobStore``, in the control service's KV) and starts
one supervising task for it, which:

1. waits until some node's totals hold the entrypoint's resources
   (``entrypoint_num_cpus`` / ``_num_gpus`` / ``_memory`` / ``_resources``;
   the job stays PENDING with a message naming what is missing). Ray places
   the entrypoint on a node with those resources; ember runs every
   entrypoint on the head and only checks that the cluster has them;
2. fetches the job's working_dir and py_modules packages from the package
   store and unpacks them under ``<session>/runtime_resources/jobs/<id>/``;
3. starts the entrypoint (``driver.spawn``) with the working_dir as its
   folder (else the server's own), and marks the job RUNNING;
4. while it runs, looks for the driver it registered (a state API job row
   whose driver pid is in the entrypoint's process group) to record the
   driver's job id;
5. when the entrypoint exits: SUCCEEDED (exit code 0), STOPPED (a stop was
   asked), else FAILED with the log's tail; what is left of its process
   group is killed. The control service frees the driver's job when its
   connection closes: its workers and non-detached actors go with it.

:meth:`stop` sends SIGTERM to the entrypoint's group and SIGKILL after
``EMBER_JOB_STOP_WAIT_TIME_S`` (or Ray's ``RAY_JOB_STOP_WAIT_TIME_S``; 3 s).
When the server starts (:meth:`start`), records still PENDING or RUNNING
belong to a server that is gone: their process is killed if it still runs
and they are marked FAILED, as Ray does when a job's supervisor dies.
"""

from __future__ import annotations

import asyncio
import codecs
import logging
import os
import secrets
import signal
import subprocess
import time
from collections.abc import AsyncGenerator
from typing import Any

from ember.common.aio import Supervisor
from ember.dashboard.jobs import driver
from ember.dashboard.jobs.records import JobRecord, new_submission_id, parse_submit
from ember.dashboard.jobs.runner import Run, Runner, driver_rows, now_ms
from ember.dashboard.jobs.store import ControlLink, JobStore, PackageStore, head_wait_s
from ember.rpc.errors import ConnectionLostError, RpcError
from ember.runtime_env import runtime_env as renv

logger = logging.getLogger(__name__)

#: how long a closing server tries to mark its running jobs FAILED
CLOSE_WAIT_S = 2.0


def stop_wait_s() -> float:
    for var in ("EMBER_JOB_STOP_WAIT_TIME_S", "RAY_JOB_STOP_WAIT_TIME_S"):
        if os.environ.get(var):
            return float(os.environ[var])
    return 3.0


class JobNotFoundError(LookupError):
    """No job has that submission id or job id."""


class JobStateError(ValueError):
    """The job is not in a state that allows the request (answered 400)."""


class JobManager:
    """Submitted jobs of one cluster, run by this dashboard process."""

    def __init__(self, control_address: str, token: str, session_dir: str) -> None:
        self.control_address = control_address
        self._token = token
        self.session_dir = session_dir
        self.link = ControlLink(control_address, token)
        self.store = JobStore(self.link)
        self.packages = PackageStore(self.link)
        self.owner = f"{os.getpid()}:{secrets.token_hex(4)}"
        self._runs: dict[str, Run] = {}
        self._tasks = Supervisor("jobs")
        #: set once the records of a previous server were looked at
        self._ready = asyncio.Event()
        self.runner = Runner(
            link=self.link,
            store=self.store,
            packages=self.packages,
            control_address=control_address,
            token=token,
            session_dir=session_dir,
            owner=self.owner,
        )

    # -- life ----------------------------------------------------------------------
    def start_in_background(self) -> None:
        """Recover (:meth:`start`) without holding up the server's start."""
        self._tasks.spawn(self._recover(), "jobs: recover")

    async def _recover(self) -> None:
        delay = 0.1
        while True:
            try:
                await self.start()
                return
            except (RpcError, OSError) as exc:
                logger.warning("jobs: cannot read the job records yet: %s", exc)
                await asyncio.sleep(delay)
                delay = min(5.0, delay * 2)

    async def start(self) -> None:
        """Fail the jobs a previous server left PENDING or RUNNING."""
        await self._recover_records()
        self._ready.set()

    async def _recover_records(self) -> None:
        for rec in await self.store.all():
            if rec.terminal or rec.owner == self.owner:
                continue
            if rec.pid and driver.is_our_job(rec.pid, rec.submission_id):
                driver.signal_group(rec.pid, signal.SIGKILL)
            rec.finish(
                "FAILED",
                now_ms(),
                "The job server (the dashboard process) that supervised this job "
                "exited while it was pending or running; its entrypoint was stopped.",
                error_type="JOB_SUPERVISOR_ACTOR_DIED",
            )
            await self.store.put(rec)

    async def close(self) -> None:
        """Stop every job this server runs (the server is going away): each is
        killed and, if the control service still answers, marked FAILED."""
        procs = []
        for run in self._runs.values():
            run.stopping = True
            if run.proc is not None and run.proc.poll() is None:
                driver.signal_group(run.proc.pid, signal.SIGKILL)
                procs.append(run.proc)
        self._tasks.close()
        deadline = time.monotonic() + CLOSE_WAIT_S
        while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)  # reap them
        try:
            await asyncio.wait_for(self._fail_own(), CLOSE_WAIT_S)
        except (TimeoutError, RpcError, OSError) as exc:
            logger.info("jobs: the records of running jobs stay as they are: %s", exc)
        self.link.close()

    async def _fail_own(self) -> None:
        for sid in list(self._runs):
            rec = await self.store.get(sid)
            if rec is not None and not rec.terminal:
                rec.finish(
                    "FAILED",
                    now_ms(),
                    "The job server (the dashboard process) stopped while the job "
                    "ran; its entrypoint was stopped.",
                    error_type="JOB_SUPERVISOR_ACTOR_DIED",
                )
                await self.store.put(rec)

    # -- requests ------------------------------------------------------------------
    async def submit(self, body: Any) -> str:
        """Record and start a job; its submission id.

        Raises:
            TypeError / ValueError: a bad request, or a submission id in use.
        """
        req = parse_submit(body)
        await self._wait_ready()
        env = renv.normalize(req["runtime_env"], job_level=False)
        env = await self._resolve_packages(env)
        rec = JobRecord(
            submission_id=req["submission_id"] or new_submission_id(),
            entrypoint=req["entrypoint"],
            start_time=now_ms(),
            metadata=req["metadata"],
            runtime_env=env,
            entrypoint_num_cpus=req["entrypoint_num_cpus"],
            entrypoint_num_gpus=req["entrypoint_num_gpus"],
            entrypoint_memory=req["entrypoint_memory"],
            entrypoint_resources=req["entrypoint_resources"],
            owner=self.owner,
        )
        if not await self.store.add(rec):
            raise ValueError(
                f"Job with submission_id {rec.submission_id} already exists. "
                "Please use a different submission_id."
            )
        run = self._runs[rec.submission_id] = Run()
        run.task = self._tasks.spawn(
            self.runner.supervise(rec, run), f"job {rec.submission_id}"
        )
        logger.info("job %s submitted: %s", rec.submission_id, rec.entrypoint)
        return rec.submission_id

    async def _wait_ready(self) -> None:
        try:
            await asyncio.wait_for(self._ready.wait(), head_wait_s())
        except TimeoutError:
            raise ConnectionLostError(
                "the job server could not read its records from the control service "
                f"at {self.control_address} yet; try again later"
            ) from None

    async def _resolve_packages(self, env: dict[str, Any]) -> dict[str, Any]:
        """``env`` with its package URIs as the store names them; a URI not
        uploaded (or of another store) is refused."""
        out = dict(env)

        async def one(uri: str) -> str:
            if not uri.startswith("gcs://"):
                raise ValueError(
                    f"{uri}: ember's job server takes only packages uploaded to it "
                    "(gcs://...); give a local working_dir to the client instead"
                )
            found = await self.packages.resolve(uri)
            if found is None:
                raise ValueError(f"package {uri} was not uploaded to this cluster")
            return found

        if out.get("working_dir"):
            out["working_dir"] = await one(out["working_dir"])
        if out.get("py_modules"):
            out["py_modules"] = [await one(m) for m in out["py_modules"]]
        return out

    async def stop(self, ident: str) -> bool:
        """Ask a job to stop; whether it was pending or running."""
        rec = await self.submission(ident)
        if rec.terminal:
            return False
        run = self._runs.get(rec.submission_id)
        if run is None:  # not ours (start() fails those); nothing to signal
            return False
        run.stopping = True
        run.wake.set()
        if run.proc is not None and run.proc.poll() is None:
            driver.signal_group(run.proc.pid, signal.SIGTERM)
            self._tasks.spawn(self._kill_later(run.proc), f"kill {rec.submission_id}")
        return True

    async def _kill_later(self, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + stop_wait_s()
        while proc.poll() is None and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if proc.poll() is None:
            logger.info("job pid %d: SIGKILL after %.1f s", proc.pid, stop_wait_s())
            driver.signal_group(proc.pid, signal.SIGKILL)

    async def delete(self, ident: str) -> bool:
        rec = await self.submission(ident)
        if not rec.terminal:
            raise JobStateError(
                f"Attempted to delete job '{rec.submission_id}', but it is in a "
                f"non-terminal state {rec.status}."
            )
        await self.store.delete(rec.submission_id)
        self._runs.pop(rec.submission_id, None)
        return True

    async def find(self, ident: str) -> dict[str, Any]:
        """The JobDetails JSON of a submission id or a job id."""
        rec = await self._record(ident)
        if rec is not None:
            return rec.details()
        for row in await self._driver_rows():
            if row.get("job_id") == ident:
                return row
        raise JobNotFoundError(f"Job {ident} does not exist")

    async def list_jobs(self) -> list[dict[str, Any]]:
        """Every submission, then every driver that no submission started."""
        records = await self.store.all()
        linked = {r.job_id for r in records if r.job_id}
        drivers = [
            r for r in await self._driver_rows() if r.get("job_id") not in linked
        ]
        return [r.details() for r in records] + drivers

    def log_file(self, submission_id: str) -> str:
        return self.runner.log_file(submission_id)

    async def logs(self, ident: str) -> str:
        rec = await self.submission(ident)
        return driver.read_tail(self.log_file(rec.submission_id), limit=1 << 30)

    async def tail(self, ident: str) -> AsyncGenerator[str, None]:
        """The log as it grows, until the job ended and the file is read out."""
        rec = await self.submission(ident)
        path = self.log_file(rec.submission_id)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pos = 0
        ended = False
        while True:
            chunk = await asyncio.to_thread(_read_from, path, pos)
            if chunk:
                pos += len(chunk)
                text = decoder.decode(chunk)
                if text:
                    yield text
                continue
            if ended:
                rest = decoder.decode(b"", final=True)
                if rest:
                    yield rest
                return
            now = await self.store.get(rec.submission_id)
            if now is None or now.terminal:
                ended = True  # read once more: output written before the end
                continue
            await asyncio.sleep(0.1)

    # -- lookups -------------------------------------------------------------------
    async def _record(self, ident: str) -> JobRecord | None:
        rec = await self.store.get(ident)
        if rec is not None:
            return rec
        for r in await self.store.all():
            if r.job_id == ident:
                return r
        return None

    async def submission(self, ident: str) -> JobRecord:
        rec = await self._record(ident)
        if rec is not None:
            return rec
        if any(r.get("job_id") == ident for r in await self._driver_rows()):
            raise JobStateError(
                f"Job {ident} is a driver started by hand, not a submission: "
                "only submitted jobs can be stopped, deleted or read here"
            )
        raise JobNotFoundError(f"Job {ident} does not exist")

    async def _driver_rows(self) -> list[dict[str, Any]]:
        return await driver_rows(self.link)


def _read_from(path: str, pos: int, limit: int = 1 << 20) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(pos)
            return f.read(limit)
    except FileNotFoundError:
        return b""
