"""Which job server and token ``JobSubmissionClient`` picks, and what it says when it finds none."""

from __future__ import annotations

import os

import pytest

from ember.common import session
from ember.job_submission.address import find_token, server_url


@pytest.fixture
def here(tmp_path, monkeypatch):
    """A runtime folder of this test's own, with a recorded head and its session."""
    runtime = tmp_path / "run"
    runtime.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime))
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("EMBER_ADDRESS", "RAY_ADDRESS", "EMBER_API_SERVER_ADDRESS",
                "RAY_API_SERVER_ADDRESS", "EMBER_AUTH_TOKEN"):  # fmt: skip
        monkeypatch.delenv(var, raising=False)
    sess = tmp_path / "session"
    sess.mkdir(mode=0o700)
    record = {
        "kind": "head",
        "control_address": "10.0.0.5:6379",
        "token": "recorded-token",
        "session_dir": str(sess),
    }
    session.write_cluster_record(record)
    return sess


def test_a_url_is_taken_as_it_is_and_the_environment_wins(here, monkeypatch):
    assert server_url("http://h:1/") == "http://h:1"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.5:6379")  # not a URL: not the server's
    assert server_url("https://h:2") == "https://h:2"
    monkeypatch.setenv("EMBER_ADDRESS", "http://from-env:8265")
    assert server_url("http://h:1") == "http://from-env:8265"
    monkeypatch.setenv("RAY_API_SERVER_ADDRESS", "http://api:9")
    assert server_url(None) == "http://api:9"


def test_the_recorded_cluster_s_dashboard_is_found(here):
    (here / "dashboard_url").write_text("127.0.0.1:18555\n")
    assert server_url(None) == "http://127.0.0.1:18555"
    assert server_url("auto") == "http://127.0.0.1:18555"
    assert server_url("10.0.0.5:6379") == "http://127.0.0.1:18555"
    assert server_url("192.0.2.9:6379") == "http://192.0.2.9:8265"
    with pytest.raises(ValueError, match="Ray Client"):
        server_url("ray://h:10001")


def test_no_dashboard_recorded_says_what_to_pass(here):
    with pytest.raises(ConnectionError, match="http://HOST:8265"):
        server_url(None)


def test_the_token_comes_from_the_caller_the_environment_or_the_record(
    here, monkeypatch
):
    assert find_token({"authorization": "Bearer x"})[0] == ""
    token, looked = find_token(None)
    assert token == "recorded-token"
    assert session.TOKEN_ENV in looked
    monkeypatch.setenv(session.TOKEN_ENV, "env-token")
    assert find_token({})[0] == "env-token"
    monkeypatch.delenv(session.TOKEN_ENV)
    os.unlink(session.cluster_record_path())
    token, looked = find_token(None)
    assert token == ""
    assert session.token_path() in looked
