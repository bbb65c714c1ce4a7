"""Mutual TLS on every TCP connection of a cluster (EMBER_USE_TLS and certificates)."""

from __future__ import annotations

import shutil
import socket
import subprocess

import numpy as np
import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session, tls

pytestmark = pytest.mark.multiprocess


def _make_certs(d):
    def run(*args):
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=d)

    run(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "1",
        "-subj",
        "/CN=ember-ca",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    )
    run(
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=node",
        "-keyout",
        "node.key",
        "-out",
        "node.csr",
    )
    run(
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "1",
        "-out",
        "node.pem",
    )
    return d / "node.pem", d / "node.key", d / "ca.pem"


@pytest.fixture
def tls_cluster(tmp_path, monkeypatch):
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    cert, key, ca = _make_certs(tmp_path)
    for var in (session.TOKEN_ENV, session.ADDRESS_ENV, "RAY_ADDRESS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("EMBER_USE_TLS", "1")
    monkeypatch.setenv("EMBER_TLS_SERVER_CERT", str(cert))
    monkeypatch.setenv("EMBER_TLS_SERVER_KEY", str(key))
    monkeypatch.setenv("EMBER_TLS_CA_CERT", str(ca))
    tls.server_context.cache_clear()
    tls.client_context.cache_clear()
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False
    )
    try:
        yield c
    finally:
        if ember.is_initialized():
            ember.shutdown()
        c.shutdown()
        tls.server_context.cache_clear()
        tls.client_context.cache_clear()
    assert wait_until(lambda: not live_children())


def test_cluster_works_over_tls_and_refuses_plaintext(tls_cluster):
    other = tls_cluster.add_node(num_cpus=1, resources={"far": 1})
    tls_cluster.wait_for_nodes()
    tls_cluster.connect()

    @ember.remote(resources={"far": 1})
    def make():
        return np.arange(1_000_000), ember.get_runtime_context().get_node_id()

    arr, node = ember.get(make.remote(), timeout=60)
    assert node == other.node_id
    assert int(arr.sum()) == 1_000_000 * 999_999 // 2

    # A peer that does not speak TLS gets nothing from the control service's port.
    host, port = tls_cluster.address.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"\x00" * 64)
        s.settimeout(10)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
    assert b"nonce" not in data  # never reached our HELLO frame
