"""Ray's Jobs REST API on the dashboard: submit, list, inspect, stop, delete, logs, packages.

Paths, request bodies and answers are Ray 2.60's (``ray/dashboard/modules/
job/job_head.py``), so ``ray job submit`` and Ray's ``JobSubmissionClient``
work against ember too. Every route sits behind the dashboard's token check
(``dashboard/auth.py``): a request without the cluster token never reaches
these handlers, so a job submitted without it is never recorded or run.
Errors answer ``{"error": message}`` with 400 (bad request or state), 404
(no such job or package), 413 (package over the limit), 503 (the control
service does not answer) or 500.

Answers to a browser (``_from_browser``) mask the values of a job's
runtime_env ``env_vars`` (keys kept), as Ray's dashboard does, so secrets
passed that way do not reach pages; the SDK and CLI get them as submitted.

Packages: ``PUT /api/packages/gcs/<name>`` stores a working_dir or
py_modules zip (at most ``max_package_bytes()``, 512 MiB by default,
``EMBER_RUNTIME_ENV_MAX_PACKAGE_BYTES``; the body is read as a stream, so
the application's 1 MiB body limit does not apply and a larger body is cut
off at the limit); ``GET`` answers 200 when it is stored, else 404.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Awaitable, Callable

from aiohttp import web

from ember.dashboard.context import DashboardContext
from ember.dashboard.jobs.manager import JobManager, JobNotFoundError, JobStateError
from ember.dashboard.jobs.records import redacted
from ember.rpc.errors import RemoteError, RpcError
from ember.runtime_env.packing import max_package_bytes

logger = logging.getLogger(__name__)

EXTRA_KEY = "jobs"
_PACKAGE_EXTENSIONS = (".zip", ".whl")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _answers(fn: Handler) -> Handler:
    """Map the manager's typed errors to HTTP answers."""

    async def handler(request: web.Request) -> web.StreamResponse:
        try:
            return await fn(request)
        except JobNotFoundError as exc:
            return _error(404, str(exc))
        except (JobStateError, TypeError, ValueError) as exc:
            return _error(400, str(exc))
        except RemoteError as exc:
            status = 400 if exc.is_a(ValueError) else 500
            return _error(status, str(exc))
        except RpcError as exc:  # the control service is away (a head restart)
            return _error(503, f"the cluster's control service does not answer: {exc}")

    return handler


def manager_of(ctx: DashboardContext) -> JobManager:
    """This process's job manager (made on first use)."""
    mgr = ctx.extras.get(EXTRA_KEY)
    if mgr is None:
        mgr = ctx.extras[EXTRA_KEY] = JobManager(
            ctx.control_address, ctx.token, ctx.session_dir
        )
    assert isinstance(mgr, JobManager)
    return mgr


def add_routes(app: web.Application, ctx: DashboardContext) -> None:
    mgr = manager_of(ctx)

    async def on_startup(app: web.Application) -> None:
        mgr.start_in_background()

    async def on_cleanup(app: web.Application) -> None:
        await mgr.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)

    @_answers
    async def submit(request: web.Request) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError as exc:
            return _error(400, f"the request body is not JSON: {exc}")
        sid = await mgr.submit(body)
        return web.json_response({"job_id": sid, "submission_id": sid})

    @_answers
    async def list_jobs(request: web.Request) -> web.StreamResponse:
        jobs = await mgr.list_jobs()
        if _from_browser(request):
            jobs = [redacted(j) for j in jobs]
        return web.json_response(jobs)

    @_answers
    async def get_job(request: web.Request) -> web.StreamResponse:
        job = await mgr.find(request.match_info["job_id"])
        return web.json_response(redacted(job) if _from_browser(request) else job)

    @_answers
    async def stop_job(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"stopped": await mgr.stop(request.match_info["job_id"])}
        )

    @_answers
    async def delete_job(request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {"deleted": await mgr.delete(request.match_info["job_id"])}
        )

    @_answers
    async def job_logs(request: web.Request) -> web.StreamResponse:
        return web.json_response({"logs": await mgr.logs(request.match_info["job_id"])})

    @_answers
    async def tail_logs(request: web.Request) -> web.StreamResponse:
        ident = request.match_info["job_id"]
        await mgr.submission(ident)  # 404 / 400 before the upgrade
        ws = web.WebSocketResponse(heartbeat=30)
        await ws.prepare(request)
        lines = mgr.tail(ident)
        try:
            async for chunk in lines:
                if ws.closed:
                    break
                await ws.send_str(chunk)
        finally:
            await lines.aclose()
            await ws.close()
        return ws

    @_answers
    async def get_package(request: web.Request) -> web.StreamResponse:
        uri = _package_uri(request)
        if await mgr.packages.resolve(uri) is None:
            return _error(404, f"Package {uri} does not exist")
        return web.Response()

    @_answers
    async def put_package(request: web.Request) -> web.StreamResponse:
        uri = _package_uri(request)
        limit = max_package_bytes()
        if request.content_length is not None and request.content_length > limit:
            return _too_large(request.content_length, limit)
        parts, size = [], 0
        async for chunk in request.content.iter_chunked(1 << 20):
            size += len(chunk)
            if size > limit:
                return _too_large(size, limit)
            parts.append(chunk)
        if not size:
            return _error(400, "the package is empty")
        stored = await mgr.packages.put(uri, b"".join(parts))
        logger.info("package %s stored (%d bytes) as %s", uri, size, stored)
        return web.Response()

    app.router.add_post("/api/jobs/", submit)
    app.router.add_get("/api/jobs/", list_jobs)
    app.router.add_get("/api/jobs/{job_id}", get_job)
    app.router.add_post("/api/jobs/{job_id}/stop", stop_job)
    app.router.add_delete("/api/jobs/{job_id}", delete_job)
    app.router.add_get("/api/jobs/{job_id}/logs", job_logs)
    app.router.add_get("/api/jobs/{job_id}/logs/tail", tail_logs)
    app.router.add_get("/api/packages/{protocol}/{package_name}", get_package)
    app.router.add_put("/api/packages/{protocol}/{package_name}", put_package)


def _from_browser(request: web.Request) -> bool:
    """Whether a browser seems to ask (Ray's test: a Mozilla user agent, a
    ``Sec-Fetch-*`` or CORS header); ``EMBER_DASHBOARD_REDACT_RUNTIME_ENV=0``
    turns the redaction off."""
    if os.environ.get("EMBER_DASHBOARD_REDACT_RUNTIME_ENV", "1") == "0":
        return False
    headers = request.headers
    return headers.get("User-Agent", "").startswith("Mozilla") or any(
        h.lower().startswith("sec-fetch-") or h.lower() == "origin" for h in headers
    )


def _package_uri(request: web.Request) -> str:
    protocol = request.match_info["protocol"]
    name = request.match_info["package_name"]
    if protocol != "gcs":
        raise ValueError(f"packages are stored under gcs://, not {protocol}://")
    if not name.endswith(_PACKAGE_EXTENSIONS) or "/" in name or name.startswith("."):
        raise ValueError(
            f"package name {name!r} must end in one of {', '.join(_PACKAGE_EXTENSIONS)}"
        )
    return f"gcs://{name}"


def _too_large(size: int, limit: int) -> web.Response:
    return _error(
        413,
        f"the package ({size} bytes or more) is over the limit of {limit} bytes "
        f"(EMBER_RUNTIME_ENV_MAX_PACKAGE_BYTES); leave large files out with "
        "'excludes' or a .gitignore",
    )
