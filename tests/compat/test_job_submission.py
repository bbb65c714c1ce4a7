"""The job SDK against a job server: the same script passes on Ray 2.60 and on ember.

The fixture starts whichever backend's head: on Ray, ``ray start --head`` with
its dashboard (a private temp folder, its processes stopped by pid after the
module); on ember, ``ember start --head`` with the job server served from this
process (``tests/integration/jobs_server.py``) and the cluster token in
``EMBER_AUTH_TOKEN``. The test bodies only use ``ember.job_submission``.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import tempfile

import psutil
import pytest
from tests.compat.conftest import IS_REAL_RAY, wait_for_condition

from ember.job_submission import JobStatus, JobSubmissionClient

#: Ray's head gets fixed ports of the jobs range (18500-18599), so that it meets
#: no other Ray a test or benchmark on this machine runs at Ray's defaults
RAY_DASHBOARD_PORT = 18590
RAY_GCS_PORT = 18591
RAY_PORTS = {
    "--dashboard-agent-listen-port": 18592,
    "--dashboard-agent-grpc-port": 18593,
    "--runtime-env-agent-port": 18594,
    "--metrics-export-port": 18595,
    "--node-manager-port": 18596,
    "--object-manager-port": 18597,
    "--ray-client-server-port": 18598,
    # the workers' ports too (Ray's default range, 10002-19999, holds the ones above)
    "--worker-port-list": ",".join(str(p) for p in range(18560, 18590)),
}


MARK = "EMBER_JOBS_COMPAT_HEAD"


def _marked(mark: str) -> list[psutil.Process]:
    """Processes whose environment carries ``MARK=mark`` (Ray renames many of
    its processes, so their command lines do not say whose they are)."""
    out = []
    for p in psutil.process_iter():
        try:
            if p.environ().get(MARK) == mark and p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            pass
    return out


@pytest.fixture(scope="module")
def job_address():
    if IS_REAL_RAY:
        yield from _ray_head()
    else:
        yield from _ember_head()


def _ray_head():
    """Ray's head, its token authentication off (``RAY_AUTH_MODE=disabled``;
    Ray turns it on when a ``~/.ray/auth_token`` exists, and this process's Ray
    read its own mode, disabled, when it was imported)."""
    temp = tempfile.mkdtemp(prefix="jobs-ray", dir="/tmp")
    env = dict(os.environ)
    for var in ("RAY_ADDRESS", "EMBER_ADDRESS"):
        env.pop(var, None)
    env["RAY_AUTH_MODE"] = "disabled"
    env[MARK] = temp
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    ray_cli = os.path.join(os.path.dirname(sys.executable), "ray")
    try:
        started = subprocess.run(
            ["nice", "-n", "10", ray_cli, "start", "--head", f"--port={RAY_GCS_PORT}",
             "--include-dashboard=true", f"--dashboard-port={RAY_DASHBOARD_PORT}",
             "--num-cpus=1", f"--temp-dir={temp}", "--disable-usage-stats",
             *(f"{flag}={port}" for flag, port in RAY_PORTS.items())],
            env=env, capture_output=True, text=True, timeout=180,
        )  # fmt: skip
        assert started.returncode == 0, started.stdout + started.stderr
        yield f"http://127.0.0.1:{RAY_DASHBOARD_PORT}"
    finally:
        for _ in range(3):
            procs = _marked(temp)
            for p in procs:
                try:
                    p.terminate()
                except psutil.NoSuchProcess:
                    pass
            _, alive = psutil.wait_procs(procs, timeout=10)
            for p in alive:
                try:
                    p.kill()
                except psutil.NoSuchProcess:
                    pass
        shutil.rmtree(temp, ignore_errors=True)


def _ember_head():
    from tests.integration.cli_cluster import clean_up, make_root
    from tests.integration.jobs_server import Head, JobServer

    root = make_root("emjc")
    saved = os.environ.get("EMBER_AUTH_TOKEN")
    server = None
    try:
        head = Head(root)
        head.start()
        server = JobServer(head.context()).start()
        os.environ["EMBER_AUTH_TOKEN"] = head.record["token"]
        yield server.url
    finally:
        if server is not None:
            server.stop()
        if saved is None:
            os.environ.pop("EMBER_AUTH_TOKEN", None)
        else:
            os.environ["EMBER_AUTH_TOKEN"] = saved
        left = clean_up(root)
    assert not left, left


def _status_is(client, sid, status):
    return lambda: client.get_job_status(sid) == status


def test_submit_wait_logs_list_stop_delete(job_address):
    client = JobSubmissionClient(job_address)
    sid = client.submit_job(entrypoint="echo hello-from-a-job")
    wait_for_condition(_status_is(client, sid, JobStatus.SUCCEEDED), timeout=120)
    assert "hello-from-a-job" in client.get_job_logs(sid)
    info = client.get_job_info(sid)
    assert info.submission_id == sid
    assert info.status == JobStatus.SUCCEEDED
    assert info.entrypoint == "echo hello-from-a-job"
    assert info.message == "Job finished successfully."
    assert info.driver_exit_code == 0
    assert sid in [job.submission_id for job in client.list_jobs()]

    sleeper = client.submit_job(entrypoint="sleep 600", metadata={"kind": "sleeper"})
    wait_for_condition(_status_is(client, sleeper, JobStatus.RUNNING), timeout=120)
    with pytest.raises(RuntimeError):
        client.delete_job(sleeper)  # only a job that ended can be deleted
    assert client.stop_job(sleeper) is True
    wait_for_condition(_status_is(client, sleeper, JobStatus.STOPPED), timeout=60)
    assert client.get_job_info(sleeper).metadata == {"kind": "sleeper"}
    assert client.delete_job(sid) is True
    assert client.delete_job(sleeper) is True
    with pytest.raises(RuntimeError):
        client.get_job_info(sid)
    assert sid not in [job.submission_id for job in client.list_jobs()]


def test_a_working_dir_is_uploaded_and_logs_can_be_followed(job_address, tmp_path):
    (tmp_path / "data.txt").write_text("shipped-with-the-job\n")
    (tmp_path / "show.py").write_text("print(open('data.txt').read().strip())\n")
    client = JobSubmissionClient(job_address)
    sid = client.submit_job(
        entrypoint="python show.py",
        runtime_env={"working_dir": str(tmp_path)},
        submission_id="compat-working-dir",
    )
    assert sid == "compat-working-dir"

    async def follow():
        return "".join([chunk async for chunk in client.tail_job_logs(sid)])

    assert "shipped-with-the-job" in asyncio.run(follow())
    wait_for_condition(_status_is(client, sid, JobStatus.SUCCEEDED), timeout=60)
    with pytest.raises(RuntimeError, match="already exists"):
        client.submit_job(entrypoint="true", submission_id="compat-working-dir")
    assert client.delete_job(sid) is True


def test_a_failing_entrypoint_is_failed(job_address):
    client = JobSubmissionClient(job_address)
    sid = client.submit_job(entrypoint="sh -c 'echo bad; exit 7'")
    wait_for_condition(_status_is(client, sid, JobStatus.FAILED), timeout=120)
    info = client.get_job_info(sid)
    assert info.driver_exit_code == 7
    assert "bad" in client.get_job_logs(sid)
    assert JobStatus.FAILED.is_terminal()
    assert not JobStatus.RUNNING.is_terminal()
    assert client.delete_job(sid) is True
