"""init(address=...) failures say what is wrong: a malformed address, a stale record."""

from __future__ import annotations

import socket

import pytest

import ember
from ember.common import session


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("192.0.2.2", "Invalid address format: 192.0.2.2. Expected '<host>:<port>'"),
        ("192.0.2.2:http", "Malformed address port http. Must be an integer."),
        ("192.0.2.2:70000", "Invalid address port 70000."),
    ],
)
def test_malformed_address_is_a_value_error(address, message):
    with pytest.raises(
        ValueError, match=message.replace(".", r"\.").replace("(", r"\(")
    ):
        ember.init(address=address)
    assert not ember.is_initialized()


def test_stale_cluster_record_says_the_cluster_is_gone(monkeypatch):
    record = {
        "control_address": f"tcp:127.0.0.1:{_closed_port()}",
        "token": "stale-token",
        "session_dir": "/nonexistent/session",
    }
    monkeypatch.setattr(session, "read_cluster_record", lambda: record)
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    with pytest.raises(ConnectionError, match="not running any more") as info:
        ember.init(address="auto")
    assert "ember start --head" in str(info.value)
    assert not ember.is_initialized()
