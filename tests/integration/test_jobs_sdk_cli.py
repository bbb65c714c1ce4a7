"""``JobSubmissionClient`` and ``ember job`` against a real cluster's job server.

The SDK zips a local working_dir (its excludes applied) and uploads it, then
follows the job over the websocket; the CLI finds the token itself (the
cluster record under the user's folder) and exits with the job's outcome.
"""

from __future__ import annotations

import asyncio
import re
import sys
import textwrap

import pytest
from tests.integration.jobs_server import head, server  # noqa: F401

from ember.job_submission import (
    JobDetails,
    JobStatus,
    JobSubmissionClient,
    JobType,
)

pytestmark = pytest.mark.multiprocess

SCRIPT = textwrap.dedent(
    """
    import os
    import ember as ray
    import helper

    ray.init()
    print("ANSWER", helper.VALUE, ray.get(ray.remote(lambda: 6 * 7).remote()), flush=True)
    print("EXCLUDED", not os.path.exists("big.bin"), flush=True)
    """
)


def _working_dir(tmp_path):
    wd = tmp_path / "wd"
    wd.mkdir()
    (wd / "helper.py").write_text("VALUE = 'shipped'\n")
    (wd / "script.py").write_text(SCRIPT)
    (wd / "big.bin").write_bytes(b"\0" * 100_000)
    return wd


async def _follow(client: JobSubmissionClient, sid: str) -> str:
    return "".join([chunk async for chunk in client.tail_job_logs(sid)])


def test_the_sdk_submits_follows_stops_and_deletes(server, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EMBER_AUTH_TOKEN", server.ctx.token)
    wd = _working_dir(tmp_path)
    client = JobSubmissionClient(server.url, metadata={"team": "tests"})
    sid = client.submit_job(
        entrypoint=f"{sys.executable} script.py",
        runtime_env={"working_dir": str(wd), "excludes": ["*.bin"]},
        metadata={"run": "1"},
    )
    text = asyncio.run(_follow(client, sid))
    assert "ANSWER shipped 42" in text, text
    assert "EXCLUDED True" in text
    assert client.get_job_status(sid) == JobStatus.SUCCEEDED
    info = client.get_job_info(sid)
    assert isinstance(info, JobDetails)
    assert info.type == JobType.SUBMISSION
    assert info.submission_id == sid
    assert info.metadata == {"run": "1", "team": "tests"}
    assert info.runtime_env["working_dir"].startswith("gcs://_ember_pkg_")
    assert client.get_job_logs(sid) == text
    assert sid in [j.submission_id for j in client.list_jobs()]

    lib = tmp_path / "mylib"
    lib.mkdir()
    (lib / "__init__.py").write_text("NAME = 'a py_module'\n")
    code = "import mylib, ember; ember.init(); print('PYMOD', mylib.NAME)"
    with_module = client.submit_job(
        entrypoint=f'{sys.executable} -c "{code}"',
        runtime_env={"py_modules": [str(lib)]},
    )
    assert "PYMOD a py_module" in asyncio.run(_follow(client, with_module))
    assert client.get_job_status(with_module) == JobStatus.SUCCEEDED

    sleeper = client.submit_job(entrypoint="sleep 600", submission_id="sdk-sleeper")
    assert sleeper == "sdk-sleeper"
    with pytest.raises(RuntimeError, match="already exists"):
        client.submit_job(entrypoint="true", submission_id="sdk-sleeper")
    assert client.stop_job(sleeper) is True
    assert "sdk-sleeper" in [j.submission_id for j in client.list_jobs()]
    stopped = asyncio.run(_follow(client, sleeper))  # ends when the job has ended
    assert stopped == ""
    assert client.get_job_status(sleeper) == JobStatus.STOPPED
    assert client.get_job_status(sleeper).is_terminal()
    assert client.delete_job(sleeper) is True
    assert client.delete_job(sid) is True
    with pytest.raises(RuntimeError, match="does not exist"):
        client.get_job_info(sid)


def test_the_sdk_without_the_right_token_says_where_it_looked(server, monkeypatch):  # noqa: F811
    monkeypatch.setenv("EMBER_AUTH_TOKEN", "not-the-token")
    with pytest.raises(RuntimeError, match="token is missing or wrong") as err:
        JobSubmissionClient(server.url)
    assert "EMBER_AUTH_TOKEN" in str(err.value)
    monkeypatch.delenv("EMBER_AUTH_TOKEN")
    with pytest.raises(RuntimeError, match="401"):
        JobSubmissionClient(server.url, headers={"Authorization": "Bearer nope"})


def test_ember_job_submit_runs_a_script_end_to_end(head, server, tmp_path):  # noqa: F811
    wd = _working_dir(tmp_path)
    url = server.url
    env_file = tmp_path / "env.yaml"
    env_file.write_text("excludes:\n  - '*.bin'\n")
    out = head.cli(
        "job", "submit", "--address", url, "--working-dir", str(wd),
        "--runtime-env", str(env_file), "--", sys.executable, "script.py",
    )  # fmt: skip
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ANSWER shipped 42" in out.stdout
    assert "EXCLUDED True" in out.stdout
    sid = re.search(r"Job '(\S+)' submitted successfully", out.stdout).group(1)
    assert f"Job '{sid}' succeeded" in out.stdout
    status = head.cli("job", "status", "--address", url, sid)
    assert f"Job '{sid}' succeeded" in status.stdout, status.stderr
    logs = head.cli("job", "logs", "--address", url, sid)
    assert "ANSWER shipped 42" in logs.stdout
    listed = head.cli("job", "list", "--address", url)
    assert sid in listed.stdout
    assert "SUCCEEDED" in listed.stdout

    failing = head.cli(
        "job", "submit", "--address", url, "--", "sh", "-c", "echo oops; exit 4"
    )
    assert failing.returncode == 1
    assert "oops" in failing.stdout
    assert "failed" in failing.stdout

    bg = head.cli(
        "job", "submit", "--address", url, "--no-wait", "--submission-id", "cli-bg",
        "--", "sleep", "600",
    )  # fmt: skip
    assert bg.returncode == 0, bg.stderr
    stop = head.cli("job", "stop", "--address", url, "cli-bg")
    assert "Job 'cli-bg' was stopped" in stop.stdout, stop.stdout + stop.stderr
    follow = head.cli("job", "logs", "--follow", "--address", url, "cli-bg")
    assert follow.returncode == 0
    deleted = head.cli("job", "delete", "--address", url, "cli-bg")
    assert "deleted" in deleted.stdout
    missing = head.cli("job", "status", "--address", url, "cli-bg")
    assert missing.returncode != 0
    assert "does not exist" in missing.stderr
    no_token = head.cli("job", "list", "--address", url, "--token", "wrong")
    assert no_token.returncode != 0
    assert "token is missing or wrong" in no_token.stderr
    assert "every user of this machine can read it" in no_token.stderr
    wrong_file = tmp_path / "wrong_token"
    wrong_file.write_text("wrong\n")
    from_file = head.cli(
        "job", "list", "--address", url, "--token-file", str(wrong_file)
    )
    assert "token is missing or wrong" in from_file.stderr  # the file's token was sent
