"""The job server's pure parts: records and their status changes, request checks,
resource checks, the JSON forms the client reads, and the driver's env merge."""

from __future__ import annotations

import json

import pytest

from ember.dashboard.jobs.records import (
    JobRecord,
    missing_resources,
    new_submission_id,
    parse_submit,
    wanted_resources,
)
from ember.job_submission import JobDetails, JobInfo, JobStatus, JobType
from ember.runtime_env import job_env


def test_submission_ids_look_like_rays():
    ids = {new_submission_id() for _ in range(200)}
    assert len(ids) == 200
    for sid in ids:
        assert sid.startswith("raysubmit_")
        assert len(sid) == len("raysubmit_") + 16
        assert not set(sid[10:]) & set("IloO0")


def test_a_record_moves_forward_only():
    rec = JobRecord(submission_id="s", entrypoint="true")
    assert rec.details()["message"] == "Job has not started yet."
    rec.start(123, "me", 1000)
    assert (rec.status, rec.pid, rec.start_time) == ("RUNNING", 123, 1000)
    assert rec.details()["message"] == "Job is currently running."
    rec.finish("STOPPED", 2000)
    assert rec.details()["message"] == "Job was intentionally stopped."
    with pytest.raises(RuntimeError, match="terminal state: STOPPED -> FAILED"):
        rec.finish("FAILED", 3000)
    with pytest.raises(ValueError, match="not a terminal"):
        JobRecord(submission_id="t", entrypoint="x").finish("RUNNING", 1)
    again = JobRecord.from_bytes(rec.to_bytes())
    assert again == rec


def test_details_are_what_rays_client_reads():
    rec = JobRecord(
        submission_id="s",
        entrypoint="python x.py",
        runtime_env={"env_vars": {"A": "1"}},
        entrypoint_resources={"gizmo": 1.0},
    )
    d = rec.details()
    assert d["type"] == "SUBMISSION"
    assert "waiting for resources" in d["message"]
    assert "runtime environment" in d["message"]
    job = JobDetails(**json.loads(json.dumps(d)), newer_field=1)
    assert job.type == JobType.SUBMISSION
    assert job.status == JobStatus.PENDING
    assert job.extra == {"newer_field": 1}
    assert job.dict()["submission_id"] == "s"
    info = rec.info()
    assert isinstance(info, JobInfo)
    assert JobInfo.from_json(info.to_json()) == info
    assert json.loads(info.to_json()["runtime_env_json"]) == {"env_vars": {"A": "1"}}


def test_job_status_is_a_str_enum_with_terminal_states():
    assert JobStatus("SUCCEEDED") == "SUCCEEDED"
    assert str(JobStatus.RUNNING) == "RUNNING"
    assert f"{JobStatus.FAILED}" == "FAILED"
    assert [s.is_terminal() for s in JobStatus] == [False, False, True, True, True]


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        ([], TypeError, "JSON object"),
        ({}, TypeError, "entrypoint must be a string"),
        ({"entrypoint": " "}, ValueError, "non-empty"),
        ({"entrypoint": "x", "submission_id": 3}, TypeError, "submission_id"),
        ({"entrypoint": "x", "submission_id": "a/b"}, ValueError, "without '/'"),
        (
            {"entrypoint": "x", "runtime_env": []},
            TypeError,
            "runtime_env must be a dict",
        ),
        (
            {"entrypoint": "x", "metadata": {"a": 1}},
            TypeError,
            "values must be strings",
        ),
        (
            {"entrypoint": "x", "entrypoint_num_cpus": "2"},
            TypeError,
            "must be a number",
        ),
        ({"entrypoint": "x", "entrypoint_num_gpus": -1}, ValueError, "non-negative"),
        ({"entrypoint": "x", "entrypoint_memory": 1.5}, TypeError, "integer"),
        ({"entrypoint": "x", "entrypoint_resources": {"a": "b"}}, TypeError, "number"),
        ({"entrypoint": "x", "bogus": 1}, TypeError, "unexpected fields"),
        (
            {"entrypoint": "x", "entrypoint_label_selector": {"a": "b"}},
            ValueError,
            "head",
        ),
    ],
)
def test_bad_submissions_are_refused_with_rays_errors(body, error, match):
    with pytest.raises(error, match=match):
        parse_submit(body)


def test_a_good_submission_is_normalised():
    req = parse_submit(
        {"entrypoint": "x", "job_id": "old-name", "entrypoint_num_cpus": 1}
    )
    assert req["submission_id"] == "old-name"
    assert req["metadata"] == {}
    assert req["runtime_env"] == {}
    rec = JobRecord(submission_id="s", entrypoint="x", entrypoint_num_cpus=1)
    assert wanted_resources(rec) == {"CPU": 1.0}


def test_missing_resources_names_what_no_node_has():
    nodes = [{"CPU": 2.0}, {"CPU": 8.0, "GPU": 1.0}]
    assert missing_resources({}, nodes) == {}
    assert missing_resources({"CPU": 4.0}, nodes) == {}
    assert missing_resources({"CPU": 4.0, "GPU": 1.0}, nodes) == {}
    assert missing_resources({"GPU": 2.0}, nodes) == {"GPU": 2.0}
    assert missing_resources({"CPU": 1.0}, []) == {"CPU": 1.0}


def test_init_lays_its_runtime_env_over_the_jobs(monkeypatch):
    monkeypatch.delenv(job_env.JOB_CONFIG_ENV, raising=False)
    assert job_env.with_job_env({"env_vars": {"A": "1"}}) == {"env_vars": {"A": "1"}}
    job = {"working_dir": "gcs://_ember_pkg_x.zip", "env_vars": {"A": "1"}}
    monkeypatch.setenv(job_env.JOB_CONFIG_ENV, json.dumps({"runtime_env": job}))
    assert job_env.with_job_env(None) == job
    merged = job_env.with_job_env({"env_vars": {"B": "2"}, "pip": ["x"]})
    assert merged == {
        "working_dir": "gcs://_ember_pkg_x.zip",
        "pip": ["x"],
        "env_vars": {"A": "1", "B": "2"},
    }
    with pytest.raises(ValueError, match=r"both set \['A'\]"):
        job_env.with_job_env({"env_vars": {"A": "9"}})
    monkeypatch.setenv("EMBER_OVERRIDE_JOB_RUNTIME_ENV", "1")
    assert job_env.with_job_env({"env_vars": {"A": "9"}})["env_vars"] == {"A": "9"}
    monkeypatch.setenv(job_env.JOB_CONFIG_ENV, "{not json")
    with pytest.raises(ValueError, match="not JSON"):
        job_env.with_job_env(None)
