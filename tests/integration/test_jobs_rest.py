"""Ray's Jobs REST API against a real cluster: submit, follow, stop, delete, packages, the door.

Each test talks HTTP to the job routes served over a head started by
``ember start --head`` (``jobs_server``), and checks what a user would: the
job's output, its status, that a stopped job's driver, workers and actors
are gone, that a request without the token is refused and runs nothing.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
import textwrap

import aiohttp
import pytest
from tests.integration.cli_cluster import wait_until
from tests.integration.jobs_server import gone, head, server  # noqa: F401

from ember.runtime_env import packing

pytestmark = pytest.mark.multiprocess

SCRIPT = textwrap.dedent(
    """
    import ember as ray
    import helper

    ray.init()

    @ray.remote
    def double(x):
        return 2 * x

    print("ANSWER", helper.VALUE, ray.get(double.remote(21)), flush=True)
    for i in range(3):
        print("LINE", i, flush=True)
    """
)


def _upload(server, folder: str) -> str:  # noqa: F811
    data, ext = packing.pack_path(folder, None, as_module=False)
    uri = packing.package_uri(data, ext)
    name = packing.package_name(uri)
    assert server.call("GET", f"/api/packages/gcs/{name}")[0] == 404
    status, body = server.call("PUT", f"/api/packages/gcs/{name}", data=data)
    assert status == 200, body
    assert server.call("GET", f"/api/packages/gcs/{name}")[0] == 200
    return uri


async def _tail(server, sid: str) -> str:  # noqa: F811
    headers = {"Authorization": f"Bearer {server.ctx.token}"}
    out = []
    url = f"{server.url}/api/jobs/{sid}/logs/tail"
    async with aiohttp.ClientSession(headers=headers) as s, s.ws_connect(url) as ws:
        async for msg in ws:
            assert msg.type == aiohttp.WSMsgType.TEXT, msg
            out.append(msg.data)
    return "".join(out)


def test_a_job_with_a_working_dir_runs_and_its_logs_stream(server, tmp_path):  # noqa: F811
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "helper.py").write_text("VALUE = 'from-the-working-dir'\n")
    (wd / "script.py").write_text(SCRIPT)
    uri = _upload(server, str(wd))
    status, body = server.call(
        "POST",
        "/api/jobs/",
        {
            "entrypoint": f"{sys.executable} script.py",
            "runtime_env": {"working_dir": uri},
            "metadata": {"owner": "tests"},
        },
    )
    assert status == 200, body
    sid = body["submission_id"]
    assert body["job_id"] == sid
    assert re.fullmatch(r"raysubmit_[A-Za-z1-9]{16}", sid), sid
    streamed = asyncio.run(_tail(server, sid))
    assert "ANSWER from-the-working-dir 42" in streamed, streamed
    assert "LINE 2" in streamed
    info = server.wait_status(sid, {"SUCCEEDED", "FAILED"})
    assert info["status"] == "SUCCEEDED", info
    assert info["type"] == "SUBMISSION"
    assert info["driver_exit_code"] == 0
    assert info["metadata"] == {"owner": "tests"}
    assert info["runtime_env"]["working_dir"] == uri
    assert info["message"] == "Job finished successfully."
    assert info["start_time"] <= info["end_time"]
    status, logs = server.call("GET", f"/api/jobs/{sid}/logs")
    assert status == 200
    assert logs["logs"] == streamed
    status, jobs = server.call("GET", "/api/jobs/")
    assert status == 200
    assert [j["submission_id"] for j in jobs if j["type"] == "SUBMISSION"] == [sid]
    assert server.call("DELETE", f"/api/jobs/{sid}") == (200, {"deleted": True})
    assert server.call("GET", f"/api/jobs/{sid}")[0] == 404


STOPPABLE = textwrap.dedent(
    """
    import os, time
    import ember as ray

    ray.init()

    @ray.remote
    class Holder:
        def pid(self):
            return os.getpid()

    @ray.remote
    def spin(path):
        with open(path, "w") as f:
            f.write(str(os.getpid()))
        while True:
            time.sleep(0.05)

    h = Holder.remote()
    actor_pid = ray.get(h.pid.remote())
    ref = spin.remote(os.environ["SPIN_FILE"])
    print("READY", os.getpid(), actor_pid, flush=True)
    ray.get(ref)
    """
)


def test_stop_ends_the_driver_its_workers_and_its_actors(server, tmp_path):  # noqa: F811
    (tmp_path / "stop.py").write_text(STOPPABLE)
    spin_file = tmp_path / "spin.pid"
    status, body = server.call(
        "POST",
        "/api/jobs/",
        {
            "entrypoint": f"{sys.executable} {tmp_path / 'stop.py'}",
            "runtime_env": {"env_vars": {"SPIN_FILE": str(spin_file)}},
            "submission_id": "stop-me",
        },
    )
    assert status == 200, body
    logs: dict = {}

    def ready() -> bool:
        logs.update(server.call("GET", "/api/jobs/stop-me/logs")[1])
        return "READY" in logs["logs"] and spin_file.exists() and spin_file.read_text()

    assert wait_until(ready, 120, 0.1), logs
    _, driver_pid, actor_pid = (
        re.search(r"READY (\d+) (\d+)", logs["logs"]).group(0).split()
    )
    worker_pid = int(spin_file.read_text())
    # a browser is not shown the values of env_vars (secrets go there); the SDK is
    browser = {"User-Agent": "Mozilla/5.0 (X11; Linux x86_64)"}
    status, seen = server.call("GET", "/api/jobs/stop-me", headers=browser)
    assert seen["runtime_env"]["env_vars"] == {"SPIN_FILE": "<redacted>"}
    status, jobs = server.call("GET", "/api/jobs/", headers=browser)
    assert [j["runtime_env"] for j in jobs if j["submission_id"] == "stop-me"] == [
        {"env_vars": {"SPIN_FILE": "<redacted>"}}
    ]
    assert server.job("stop-me")["runtime_env"]["env_vars"] == {
        "SPIN_FILE": str(spin_file)
    }
    # a running job cannot be deleted
    status, err = server.call("DELETE", "/api/jobs/stop-me")
    assert status == 400
    assert "non-terminal" in err["error"]
    assert server.call("POST", "/api/jobs/stop-me/stop") == (200, {"stopped": True})
    info = server.wait_status("stop-me", {"STOPPED", "FAILED", "SUCCEEDED"})
    assert info["status"] == "STOPPED", info
    assert info["message"] == "Job was intentionally stopped."
    for pid in (int(driver_pid), int(actor_pid), worker_pid):
        assert wait_until(lambda p=pid: gone(p), 30), f"pid {pid} outlived its job"
    # stopping a finished job says it was not running
    assert server.call("POST", "/api/jobs/stop-me/stop") == (200, {"stopped": False})
    assert server.call("DELETE", "/api/jobs/stop-me") == (200, {"deleted": True})


def test_a_job_submitted_without_the_token_never_runs(server, tmp_path):  # noqa: F811
    marker = tmp_path / "ran"
    bad = {"entrypoint": f"touch {marker}", "submission_id": "intruder"}
    for token in (None, "wrong-token"):
        status, body = server.call("POST", "/api/jobs/", bad, token=token)
        assert status == 401, body
        assert server.call("GET", "/api/jobs/", token=token)[0] == 401
        assert (
            server.call(
                "PUT", "/api/packages/gcs/_ember_pkg_x.zip", data=b"x", token=token
            )[0]
            == 401
        )
    # a job that does get in runs to the end; the intruder left no record and no file
    status, body = server.call("POST", "/api/jobs/", {"entrypoint": "echo fine"})
    assert status == 200, body
    server.wait_status(body["submission_id"], {"SUCCEEDED"})
    assert server.call("GET", "/api/jobs/intruder")[0] == 404
    status, jobs = server.call("GET", "/api/jobs/")
    assert "intruder" not in {j["submission_id"] for j in jobs}
    assert not marker.exists()


def test_an_oversized_package_is_refused(server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EMBER_RUNTIME_ENV_MAX_PACKAGE_BYTES", "4096")
    name = "_ember_pkg_" + "0" * 32 + ".zip"
    status, body = server.call("PUT", f"/api/packages/gcs/{name}", data=b"z" * 10_000)
    assert status == 413, body
    assert "limit of 4096 bytes" in body["error"]
    assert server.call("GET", f"/api/packages/gcs/{name}")[0] == 404


def test_bad_requests_get_clear_errors(server):  # noqa: F811
    status, body = server.call("POST", "/api/jobs/", {"entrypoint": 42})
    assert status == 400
    assert "entrypoint must be a string" in body["error"]
    status, body = server.call(
        "POST", "/api/jobs/", {"entrypoint": "true", "metadata": {"a": 1}}
    )
    assert status == 400
    assert "metadata values must be strings" in body["error"]
    missing = "gcs://_ember_pkg_" + "1" * 32 + ".zip"
    status, body = server.call(
        "POST",
        "/api/jobs/",
        {"entrypoint": "true", "runtime_env": {"working_dir": missing}},
    )
    assert status == 400
    assert "was not uploaded" in body["error"]
    status, body = server.call(
        "POST", "/api/jobs/", {"entrypoint": "true", "submission_id": "once"}
    )
    assert status == 200, body
    status, body = server.call(
        "POST", "/api/jobs/", {"entrypoint": "true", "submission_id": "once"}
    )
    assert status == 400
    assert "already exists" in body["error"]
    server.wait_status("once", {"SUCCEEDED"})
    for method, path in (
        ("GET", "/api/jobs/nope"),
        ("POST", "/api/jobs/nope/stop"),
        ("DELETE", "/api/jobs/nope"),
        ("GET", "/api/jobs/nope/logs"),
    ):
        status, body = server.call(method, path)
        assert (status, "does not exist" in body["error"]) == (404, True), (path, body)
    status, body = server.call("PUT", "/api/packages/s3/x.zip", data=b"x")
    assert status == 400


def test_a_failing_entrypoint_fails_with_its_output(server):  # noqa: F811
    status, body = server.call(
        "POST", "/api/jobs/", {"entrypoint": "echo something broke; exit 3"}
    )
    assert status == 200, body
    info = server.wait_status(body["submission_id"], {"FAILED", "SUCCEEDED"})
    assert info["status"] == "FAILED"
    assert info["driver_exit_code"] == 3
    assert info["error_type"] == "JOB_ENTRYPOINT_COMMAND_ERROR"
    assert "exit code 3" in info["message"]
    assert "something broke" in info["message"]


def test_a_job_whose_resources_no_node_has_waits_pending(server):  # noqa: F811
    status, body = server.call(
        "POST",
        "/api/jobs/",
        {"entrypoint": "echo never", "entrypoint_resources": {"unicorn": 1}},
    )
    assert status == 200, body
    sid = body["submission_id"]
    seen: dict = {}

    def waiting() -> bool:
        seen.update(server.job(sid))
        return "unicorn" in seen["message"]

    assert wait_until(waiting, 30, 0.1), seen
    assert seen["status"] == "PENDING"
    assert server.call("POST", f"/api/jobs/{sid}/stop") == (200, {"stopped": True})
    assert server.wait_status(sid, {"STOPPED"})["status"] == "STOPPED"
    status, logs = server.call("GET", f"/api/jobs/{sid}/logs")
    assert status == 200
    assert logs["logs"] == ""
    assert not os.path.exists(server.manager.log_file(sid))
