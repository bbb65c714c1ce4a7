"""Job records outlive the head and the job server: a restarted head lists them again.

The records live in the control service's KV (its SQLite storage), so a
control service killed with SIGKILL and restarted by its supervisor serves
them again; a job server that starts finds the jobs a previous server left
PENDING or RUNNING, kills what is left of them and marks them FAILED.
"""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from tests.integration.cli_cluster import wait_until
from tests.integration.jobs_server import JobServer, gone, head, server  # noqa: F401

from ember.dashboard.jobs.records import JobRecord

pytestmark = pytest.mark.multiprocess


def test_records_survive_a_head_restart(head, server):  # noqa: F811
    status, body = server.call("POST", "/api/jobs/", {"entrypoint": "echo before"})
    assert status == 200, body
    before = body["submission_id"]
    server.wait_status(before, {"SUCCEEDED"})
    first = head.control_child()
    assert first is not None
    first.send_signal(signal.SIGKILL)
    assert wait_until(
        lambda: (p := head.control_child()) is not None and p.pid != first.pid, 60
    ), "the supervisor did not restart the control service"
    # the job server reconnects on its own; the record is back from storage
    status, jobs = server.call("GET", "/api/jobs/")
    assert status == 200, jobs
    mine = {j["submission_id"]: j for j in jobs if j["type"] == "SUBMISSION"}
    assert mine[before]["status"] == "SUCCEEDED"
    assert server.call("GET", f"/api/jobs/{before}/logs")[1]["logs"] == "before\n"
    # and new jobs run against the restarted head
    status, body = server.call("POST", "/api/jobs/", {"entrypoint": "echo after"})
    assert status == 200, body
    assert (
        server.wait_status(body["submission_id"], {"SUCCEEDED"})["status"]
        == "SUCCEEDED"
    )


def test_a_new_job_server_fails_the_jobs_its_predecessor_left_running(head):  # noqa: F811
    first = JobServer(head.context()).start()
    try:
        status, body = first.call("POST", "/api/jobs/", {"entrypoint": "sleep 600"})
        assert status == 200, body
        graceful = body["submission_id"]
        first.wait_status(graceful, {"RUNNING"})
        # a record of a server that died without a word, with its process still there
        orphan = subprocess.Popen(
            ["sleep", "600"],
            env={**os.environ, "EMBER_JOB_SUBMISSION_ID": "orphan"},
            start_new_session=True,
        )
        rec = JobRecord(submission_id="orphan", entrypoint="sleep 600", owner="1:dead")
        rec.start(orphan.pid, "1:dead", 1)
        assert first.run(first.manager.store.add(rec))
        running = first.run(first.manager.store.get(graceful))
        assert running.pid
    finally:
        first.stop()  # a server that stops kills its jobs and marks them FAILED
    assert wait_until(lambda: gone(running.pid), 30)
    second = JobServer(head.context()).start()
    try:
        info = second.wait_status("orphan", {"FAILED"})
        assert "exited while it was pending or running" in info["message"]
        assert info["error_type"] == "JOB_SUPERVISOR_ACTOR_DIED"
        assert orphan.wait(30) == -signal.SIGKILL
        info = second.job(graceful)
        assert info["status"] == "FAILED"
        assert "stopped while the job ran" in info["message"]
    finally:
        second.stop()
        if orphan.poll() is None:
            orphan.kill()
            orphan.wait()
