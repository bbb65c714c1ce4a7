"""``JobSubmissionClient``: Ray's job SDK, talking to a cluster's dashboard over HTTP.

Each method is one request to the job server's REST API (``ember.dashboard
.jobs.routes``) with the cluster token as ``Authorization: Bearer``
(``address.find_token``); the log tail is a websocket. A local working_dir
or py_modules entry of a job's runtime_env is zipped here (its ``excludes``,
``.gitignore`` and ``.rayignore`` applied), named by the SHA-256 of its
bytes, and uploaded unless the server has it; the job then names it by URI.
A failed request raises ``RuntimeError`` with the server's message, as
Ray's client does; a refused token raises :class:`AuthenticationError`
saying where the token was looked for.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

from ember.job_submission.address import find_token, server_url
from ember.job_submission.models import JobDetails, JobStatus
from ember.runtime_env import runtime_env as renv, upload
from ember.runtime_env.packing import package_name

logger = logging.getLogger(__name__)

#: how long one request may take (a package upload included)
REQUEST_TIMEOUT_S = 600.0


class AuthenticationError(RuntimeError):
    """The job server refused the request's token (HTTP 401)."""


class _Response:
    def __init__(self, status: int, body: bytes) -> None:
        self.status_code = status
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode(errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)

    def message(self) -> str:
        try:
            data = self.json()
        except ValueError:
            return self.text.strip()
        if isinstance(data, dict) and isinstance(data.get("error"), str):
            return str(data["error"])
        return self.text.strip()


def _ssl_context(verify: str | bool) -> ssl.SSLContext:
    if verify is False:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        return ctx
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return ssl.create_default_context()


class JobSubmissionClient:
    """Submit jobs to a cluster and follow them (Ray's ``JobSubmissionClient``).

    Args:
        address: the dashboard's ``http://HOST:PORT``, or None / ``"auto"`` /
            a control ``HOST:PORT`` for the cluster recorded on this machine
            (``EMBER_ADDRESS`` / ``RAY_ADDRESS`` holding an ``http://`` URL
            win, as in Ray).
        create_cluster_if_needed: accepted as Ray's; ember starts no cluster.
        cookies, headers: sent with every request (an ``Authorization``
            header replaces the token ember would find).
        metadata: merged into every job's metadata.
        verify: check the server's TLS certificate (or a CA file/folder).
    """

    def __init__(
        self,
        address: str | None = None,
        create_cluster_if_needed: bool = False,
        cookies: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
        headers: dict[str, Any] | None = None,
        verify: str | bool | None = True,
    ) -> None:
        if address is not None and not isinstance(address, str):
            raise TypeError(f"address must be a string, got {type(address)}")
        if not isinstance(create_cluster_if_needed, bool):
            raise TypeError(
                "create_cluster_if_needed must be a bool, got "
                f"{type(create_cluster_if_needed)}"
            )
        for name, value in (
            ("cookies", cookies),
            ("metadata", metadata),
            ("headers", headers),
        ):
            if value is not None and not isinstance(value, dict):
                raise TypeError(f"{name} must be a dict, got {type(value)}")
        if verify is None:
            verify = True
        if not isinstance(verify, str | bool):
            raise TypeError(f"verify must be a str or bool, got {type(verify)}")
        self._address = server_url(address)
        self._cookies = dict(cookies or {})
        self._default_metadata = dict(metadata or {})
        self._headers = {str(k): str(v) for k, v in (headers or {}).items()}
        token, self._token_places = find_token(self._headers)
        if token:
            self._headers["Authorization"] = f"Bearer {token}"
        if self._cookies:
            self._headers["Cookie"] = "; ".join(
                f"{k}={v}" for k, v in self._cookies.items()
            )
        self._verify = verify
        self._ssl = _ssl_context(verify) if self._address.startswith("https") else None
        self._server_version = self._check_version()

    # -- plumbing --------------------------------------------------------------------
    def _do_request(
        self,
        method: str,
        endpoint: str,
        *,
        data: bytes | None = None,
        json_data: Any = None,
    ) -> _Response:
        headers = dict(self._headers)
        if json_data is not None:
            data = json.dumps(json_data).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(
            self._address + endpoint, data=data, method=method, headers=headers
        )
        try:
            with urllib.request.urlopen(
                req, timeout=REQUEST_TIMEOUT_S, context=self._ssl
            ) as r:
                resp = _Response(r.status, r.read())
        except urllib.error.HTTPError as exc:
            resp = _Response(exc.code, exc.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
            raise ConnectionError(
                f"Failed to connect to the ember job server at address: {self._address} "
                f"({getattr(exc, 'reason', exc)})."
            ) from exc
        if resp.status_code == 401:
            raise AuthenticationError(
                f"The job server at {self._address} refused the request (401): the "
                "cluster token is missing or wrong. The SDK looked in: "
                + ", ".join(self._token_places)
                + ". Set EMBER_AUTH_TOKEN, or pass headers={'Authorization': "
                "'Bearer <token>'}."
            )
        return resp

    def _raise_error(self, r: _Response) -> None:
        raise RuntimeError(
            f"Request failed with status code {r.status_code}: {r.message()}."
        )

    def _check_version(self) -> str:
        r = self._do_request("GET", "/api/version")
        if r.status_code == 404:
            raise RuntimeError(
                f"Version check returned 404: {self._address} serves no Jobs API."
            )
        if r.status_code != 200:
            self._raise_error(r)
        return str(r.json().get("ray_version", ""))

    def get_version(self) -> str:
        """The Jobs API version the server speaks."""
        r = self._do_request("GET", "/api/version")
        if r.status_code != 200:
            self._raise_error(r)
        return str(r.json()["version"])

    def get_address(self) -> str:
        return self._address

    # -- packages --------------------------------------------------------------------
    def _upload_packages(self, runtime_env: dict[str, Any]) -> dict[str, Any]:
        env = renv.normalize(runtime_env, job_level=True)
        env, packages = upload.pack_env(env)
        for uri, data in packages.items():
            path = f"/api/packages/gcs/{package_name(uri)}"
            r = self._do_request("GET", path)
            if r.status_code == 200:
                logger.info("Package %s already exists, skipping upload.", uri)
                continue
            if r.status_code != 404:
                self._raise_error(r)
            logger.info("Uploading package %s.", uri)
            r = self._do_request("PUT", path, data=data)
            if r.status_code != 200:
                self._raise_error(r)
        return env

    # -- jobs ------------------------------------------------------------------------
    def submit_job(
        self,
        *,
        entrypoint: str,
        job_id: str | None = None,
        runtime_env: dict[str, Any] | None = None,
        metadata: dict[str, str] | None = None,
        submission_id: str | None = None,
        entrypoint_num_cpus: int | float | None = None,
        entrypoint_num_gpus: int | float | None = None,
        entrypoint_memory: int | None = None,
        entrypoint_resources: dict[str, float] | None = None,
    ) -> str:
        """Submit ``entrypoint`` (a shell command) to run on the cluster; its
        submission id. The call returns at once; the job runs on its own.

        Raises:
            RuntimeError: the server refused it (a submission id in use, a bad
                field, a package over the size limit).
        """
        if job_id:
            logger.warning(
                "job_id kwarg is deprecated. Please use submission_id instead."
            )
        env = self._upload_packages(copy.deepcopy(dict(runtime_env or {})))
        body = {
            "entrypoint": entrypoint,
            "submission_id": submission_id or job_id,
            "runtime_env": env,
            "metadata": {**(metadata or {}), **self._default_metadata},
            "entrypoint_num_cpus": entrypoint_num_cpus,
            "entrypoint_num_gpus": entrypoint_num_gpus,
            "entrypoint_memory": entrypoint_memory,
            "entrypoint_resources": entrypoint_resources,
        }
        r = self._do_request(
            "POST",
            "/api/jobs/",
            json_data={k: v for k, v in body.items() if v is not None},
        )
        if r.status_code != 200:
            self._raise_error(r)
        return str(r.json()["submission_id"])

    def stop_job(self, job_id: str) -> bool:
        """Ask a job to stop (SIGTERM, then SIGKILL); whether it was running."""
        r = self._do_request("POST", f"/api/jobs/{job_id}/stop")
        if r.status_code != 200:
            self._raise_error(r)
        return bool(r.json()["stopped"])

    def delete_job(self, job_id: str) -> bool:
        """Forget a finished job (its logs stay on disk)."""
        r = self._do_request("DELETE", f"/api/jobs/{job_id}")
        if r.status_code != 200:
            self._raise_error(r)
        return bool(r.json()["deleted"])

    def get_job_info(self, job_id: str) -> JobDetails:
        """The job's details (by submission id or job id)."""
        r = self._do_request("GET", f"/api/jobs/{job_id}")
        if r.status_code != 200:
            self._raise_error(r)
        return JobDetails(**r.json())

    def list_jobs(self) -> list[JobDetails]:
        """Every job the cluster knows: submissions, then drivers started by hand."""
        r = self._do_request("GET", "/api/jobs/")
        if r.status_code != 200:
            self._raise_error(r)
        return [JobDetails(**j) for j in r.json()]

    def get_job_status(self, job_id: str) -> JobStatus:
        return JobStatus(self.get_job_info(job_id).status)

    def get_job_logs(self, job_id: str) -> str:
        """Everything the job's entrypoint printed so far."""
        r = self._do_request("GET", f"/api/jobs/{job_id}/logs")
        if r.status_code != 200:
            self._raise_error(r)
        return str(r.json()["logs"])

    async def tail_job_logs(self, job_id: str) -> AsyncIterator[str]:
        """The job's output as it comes, until the job ends (an async generator)."""
        import aiohttp

        headers = {k: v for k, v in self._headers.items() if k != "Cookie"}
        async with aiohttp.ClientSession(headers=headers, cookies=self._cookies) as s:
            try:
                ws = await s.ws_connect(
                    f"{self._address}/api/jobs/{job_id}/logs/tail",
                    ssl=self._ssl if self._ssl is not None else True,
                )
            except aiohttp.WSServerHandshakeError as exc:
                # the same request without the upgrade: its answer says why
                r = self._do_request("GET", f"/api/jobs/{job_id}")
                if r.status_code != 200:
                    self._raise_error(r)
                raise RuntimeError(f"Log tail of job {job_id} refused: {exc}") from exc
            async with ws:
                async for msg in ws:
                    if msg.type == aiohttp.WSMsgType.TEXT:
                        yield msg.data
                    elif msg.type == aiohttp.WSMsgType.ERROR:
                        raise RuntimeError(
                            f"WebSocket error for job {job_id}: {ws.exception()}"
                        )
            if ws.close_code == aiohttp.WSCloseCode.ABNORMAL_CLOSURE:
                raise RuntimeError(
                    f"WebSocket connection closed unexpectedly with close code {ws.close_code}"
                )
