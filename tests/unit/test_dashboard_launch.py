"""The dashboard's port rules (as Ray's): 8265 or the next free one; a given port or an error."""

from __future__ import annotations

import socket

import pytest

from ember.common.dashboard_launch import (
    DEFAULT_PORT,
    PORT_RETRIES,
    DashboardPortError,
    bind,
    bound_port,
)
from ember.common.supervisor import describe_exit, strip_supervise

#: this suite's range for fixed ports (tools/LANES5.md)
PORT = 18317


def test_a_given_port_that_is_taken_raises_naming_it():
    holder = bind("127.0.0.1", PORT)
    try:
        with pytest.raises(DashboardPortError, match=f"127.0.0.1:{PORT}") as info:
            bind("127.0.0.1", PORT)
        assert "--dashboard-port" in str(info.value)
        assert info.value.port == PORT
    finally:
        holder.close()
    again = bind("127.0.0.1", PORT)  # free once the other socket closed
    assert bound_port(again) == PORT
    again.close()


def test_no_port_means_8265_or_the_next_free_one():
    try:
        holder: socket.socket | None = bind("127.0.0.1", DEFAULT_PORT)
    except DashboardPortError:
        holder = None  # another cluster of this machine holds it already
    try:
        sock = bind("127.0.0.1", None)
        try:
            assert DEFAULT_PORT < bound_port(sock) <= DEFAULT_PORT + PORT_RETRIES
        finally:
            sock.close()
    finally:
        if holder is not None:
            holder.close()


def test_port_zero_takes_any_free_port():
    sock = bind("127.0.0.1", 0)
    try:
        assert bound_port(sock) > 0
        assert not sock.get_inheritable()  # children get it only by pass_fds
    finally:
        sock.close()


def test_supervisor_helpers():
    assert strip_supervise(["--supervise", "--a", "1", "--ready-fd", "7", "--b"]) == [
        "--a",
        "1",
        "--b",
    ]
    assert describe_exit(-9) == "signal SIGKILL"
    assert describe_exit(3) == "code 3"
