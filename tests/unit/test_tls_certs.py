"""Cluster certificates (common/tls_certs.py), TLS records, and telling a TLS peer apart."""

from __future__ import annotations

import asyncio
import ipaddress
import os

import pytest
from cryptography import x509

from ember.common import session, tls, tls_certs
from ember.common.tls import TlsFiles
from ember.protocol.messages import SCHEMA
from ember.rpc.connection import Server, connect
from ember.rpc.errors import ConnectionLostError, RpcTimeoutError, TlsRequiredError


@pytest.fixture
def files(tmp_path) -> TlsFiles:
    ca = tls_certs.make_ca("test CA", days=2)
    node = tls_certs.make_node_cert(ca, "10.1.2.3", days=2)
    out = TlsFiles(*(str(tmp_path / n) for n in ("n.pem", "n.key", "ca.pem")))
    for path, data in zip(out, (node.cert_pem, node.key_pem, ca.cert_pem), strict=True):
        with open(path, "wb") as f:
            f.write(data)
    return out


@pytest.fixture(autouse=True)
def _plaintext(monkeypatch):
    for var in (tls.USE_ENV, tls.CERT_ENV, tls.KEY_ENV, tls.CA_ENV):
        monkeypatch.delenv(var, raising=False)
    tls.use_files(None)
    yield
    tls.use_files(None)


def test_a_node_certificate_names_its_ip_and_localhost_and_serves_both_ends():
    ca = tls_certs.make_ca("c", days=1)
    cert = x509.load_pem_x509_certificate(
        tls_certs.make_node_cert(ca, "10.1.2.3", 1)[0]
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.IPAddress) == [
        ipaddress.ip_address("10.1.2.3"),
        ipaddress.ip_address("127.0.0.1"),
    ]
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {u.dotted_string for u in usage} == {
        "1.3.6.1.5.5.7.3.1",
        "1.3.6.1.5.5.7.3.2",
    }
    tls_certs.check_signed_by(tls_certs.make_node_cert(ca, "h", 1)[0], ca.cert_pem)


def test_a_certificate_of_another_ca_is_refused():
    mine, theirs = tls_certs.make_ca("a", 1), tls_certs.make_ca("b", 1)
    node = tls_certs.make_node_cert(theirs, "h", 1)
    with pytest.raises(tls_certs.CertError, match="not issued by this CA"):
        tls_certs.check_signed_by(node.cert_pem, mine.cert_pem)
    with pytest.raises(tls_certs.CertError, match="does not belong"):
        tls_certs.make_node_cert(
            tls_certs.Issued(mine.cert_pem, theirs.key_pem), "h", 1
        )
    with pytest.raises(tls_certs.CertError, match="at least 1 day"):
        tls_certs.make_ca("c", 0)


def test_a_client_hello_is_told_apart_from_an_ember_hello():
    hello = tls.client_hello()
    assert tls.looks_like_tls(hello)  # a handshake record, version 3.x
    assert tls.looks_like_tls(b"\x15\x03\x03\x00\x02")  # an alert
    assert not tls.looks_like_tls(b"\x00\x00\x00\x2a\x00\x00")  # an ember frame prefix
    assert not tls.looks_like_tls(b"")


def test_the_environment_wins_over_a_clusters_tls_record(files, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    address = "tcp:10.1.2.3:6379"
    assert not tls.use_for_cluster(address)
    assert tls.client_context() is None
    session.write_tls_record(address, files._asdict())
    assert oct(os.stat(session.tls_record_path(address)).st_mode & 0o777) == "0o600"
    assert tls.use_for_cluster(address)
    assert tls.current_files() == files
    assert tls.server_context() is not None
    assert not tls.use_for_cluster("tcp:10.1.2.3:6380")  # another cluster: plaintext
    assert tls.current_files() is None
    monkeypatch.setenv(tls.USE_ENV, "1")
    for var, path in zip((tls.CERT_ENV, tls.KEY_ENV, tls.CA_ENV), files, strict=True):
        monkeypatch.setenv(var, path + "-from-env")
    assert tls.use_for_cluster("tcp:10.1.2.3:6380")
    assert tls.current_files() == TlsFiles(*(p + "-from-env" for p in files))
    session.remove_token(address)
    assert session.read_tls_record(address) is None


def test_a_plaintext_connect_to_a_tls_listener_raises_tls_required(files):
    async def scenario() -> None:
        server = await asyncio.start_server(
            lambda r, w: None, "127.0.0.1", 0, ssl=tls.make_server_context(files)
        )
        plain = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
        try:
            port = server.sockets[0].getsockname()[1]
            assert await tls.speaks_tls("127.0.0.1", port)
            with pytest.raises(TlsRequiredError, match="this cluster uses TLS"):
                await connect(
                    f"tcp:127.0.0.1:{port}", token=b"t", schema=SCHEMA, timeout=0.5
                )
            # A silent plaintext listener is a plain timeout.
            other = plain.sockets[0].getsockname()[1]
            assert not await tls.speaks_tls("127.0.0.1", other, timeout=0.5)
            with pytest.raises(RpcTimeoutError):
                await connect(
                    f"tcp:127.0.0.1:{other}", token=b"t", schema=SCHEMA, timeout=0.5
                )
        finally:
            server.close()
            plain.close()

    asyncio.run(scenario())


def test_a_tls_connect_to_a_plaintext_listener_says_the_peer_does_not_speak_tls(files):
    async def scenario() -> None:
        server = Server(token=b"t", schema=SCHEMA, handlers={})
        address = await server.listen("tcp:127.0.0.1:0")  # plaintext: no TLS here yet
        tls.use_files(files)
        try:
            with pytest.raises(ConnectionLostError, match="does not speak TLS"):
                await connect(address, token=b"t", schema=SCHEMA, timeout=5)
        finally:
            server.close()

    asyncio.run(scenario())
