"""``ember tls init`` and ``ember start --tls``: certificates, a TLS cluster, plaintext refused."""

from __future__ import annotations

import asyncio
import os
import socket
import ssl
import stat
import subprocess
import sys

import pytest
from tests.cli.clitools import STORE, _recorded_pids, ember_cli, start_head
from tests.integration.local_users import cmdline

import ember
from ember.common import session, tls

pytestmark = pytest.mark.multiprocess


@pytest.fixture(autouse=True)
def _no_tls_left_in_this_process(monkeypatch):
    for var in (tls.USE_ENV, tls.CERT_ENV, tls.KEY_ENV, tls.CA_ENV):
        monkeypatch.delenv(var, raising=False)
    tls.use_files(None)
    yield
    tls.use_files(None)


def tls_dir() -> str:
    return os.path.join(os.path.expanduser("~"), ".ember", "tls")


def tls_init(*args: str) -> subprocess.CompletedProcess[str]:
    out = ember_cli("tls", "init", *args)
    assert out.returncode == 0, out.stderr
    return out


def modes(folder: str) -> dict[str, int]:
    return {n: stat.S_IMODE(os.lstat(os.path.join(folder, n)).st_mode) for n in os.listdir(folder)}  # fmt: skip


def handshake(server_name: str, client_name: str, folder: str, sni: str) -> None:
    """A mutual TLS handshake in memory: the server checks the client's cert, the
    client checks the server's against the CA *and* that it names ``sni``."""
    ca = os.path.join(folder, "ca.pem")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    server.load_cert_chain(*(os.path.join(folder, server_name + e) for e in (".pem", ".key")))  # fmt: skip
    server.verify_mode = ssl.CERT_REQUIRED
    client = ssl.create_default_context(cafile=ca)  # checks the host name too
    client.load_cert_chain(*(os.path.join(folder, client_name + e) for e in (".pem", ".key")))  # fmt: skip
    bios = [ssl.MemoryBIO() for _ in range(4)]
    s = server.wrap_bio(bios[0], bios[1], server_side=True)
    c = client.wrap_bio(bios[2], bios[3], server_hostname=sni)
    done = {"s": False, "c": False}
    for _ in range(10):
        for name, obj in (("c", c), ("s", s)):
            if not done[name]:
                try:
                    obj.do_handshake()
                    done[name] = True
                except ssl.SSLWantReadError:
                    pass
        bios[0].write(bios[3].read())
        bios[2].write(bios[1].read())
        if all(done.values()):
            break
    # TLS 1.3: the server's verdict on the client's certificate arrives after the
    # client's handshake is done; a round trip of data proves both accepted.
    c.write(b"ping")
    bios[0].write(bios[3].read())
    assert s.read(4) == b"ping"
    assert s.getpeercert()["subject"] == ((("commonName", client_name),),)


def test_tls_init_writes_private_files_and_a_ca_that_verifies_each_node(home):
    out = tls_init("--hosts", "127.0.0.1,node-b.example", "--days", "30")
    folder = tls_dir()
    for name in ("ca.pem", "ca.key", "127.0.0.1.pem", "node-b.example.key"):
        assert os.path.join("~/.ember/tls", name) in out.stdout
    assert "--tls" in out.stdout
    assert "--add-node" in out.stdout
    files = {"ca.pem", "ca.key", "127.0.0.1.pem", "127.0.0.1.key"}
    files |= {"node-b.example.pem", "node-b.example.key"}
    assert modes(folder) == dict.fromkeys(files, 0o600)
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    # Each certificate is signed by the CA, names its host plus localhost, and
    # serves both ends of a mutual handshake.
    handshake("node-b.example", "127.0.0.1", folder, sni="node-b.example")
    handshake("127.0.0.1", "node-b.example", folder, sni="localhost")
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        handshake("127.0.0.1", "node-b.example", folder, sni="node-b.example")

    # A second init keeps the CA; --add-node signs with it.
    with open(os.path.join(folder, "ca.key")) as f:
        ca_key = f.read()
    again = ember_cli("tls", "init", "--hosts", "x")
    assert again.returncode == 1
    assert "holds a CA already" in again.stderr
    assert "--add-node" in again.stderr
    added = tls_init("--add-node", "node-c")
    assert "~/.ember/tls/node-c.pem" in added.stdout
    assert "  ~/.ember/tls/ca.pem\n" not in added.stdout  # not written again
    with open(os.path.join(folder, "ca.key")) as f:
        assert f.read() == ca_key
    assert modes(folder)["node-c.key"] == modes(folder)["node-c.pem"] == 0o600
    handshake("node-c", "127.0.0.1", folder, sni="node-c")


def test_add_node_needs_the_ca_and_another_ca_is_refused_by_start(home):
    other = os.path.join(home, "elsewhere")
    out = ember_cli("tls", "init", "--dir", other, "--add-node", "n1")
    assert out.returncode == 1
    assert "ember tls init" in out.stderr
    assert "Traceback" not in out.stderr

    tls_init("--hosts", "127.0.0.1")
    tls_init("--dir", other, "--hosts", "127.0.0.1")
    assert modes(other)["ca.key"] == 0o600
    mixed = ember_cli(
        "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
        "--tls", "--tls-cert", os.path.join(other, "127.0.0.1.pem"),
        "--tls-key", os.path.join(other, "127.0.0.1.key"),
        "--tls-ca", os.path.join(tls_dir(), "ca.pem"),
    )  # fmt: skip
    assert mixed.returncode == 1
    assert "not issued by this CA" in mixed.stderr
    assert not _recorded_pids()


def test_start_tls_without_usable_files_is_a_clear_error(home):
    head = ("start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1")
    out = ember_cli(*head, "--tls")
    assert out.returncode == 1
    assert "ember tls init" in out.stderr
    assert "Traceback" not in out.stderr

    out = ember_cli(*head, "--tls-ca", "/nonexistent/ca.pem")
    assert out.returncode == 2
    assert "--tls-ca needs --tls" in out.stderr

    tls_init("--hosts", "10.9.8.7,10.9.8.6")  # no pair for this machine's names
    out = ember_cli(*head, "--tls")
    assert out.returncode == 1
    assert "127.0.0.1.pem" in out.stderr
    assert "10.9.8.6.pem" in out.stderr
    assert "--add-node" in out.stderr

    os.chmod(tls_dir(), 0o755)  # a folder others can reach is refused, not used
    out = ember_cli(*head, "--tls")
    assert out.returncode == 1
    assert f"ember refuses to use {tls_dir()}" in out.stderr
    assert not _recorded_pids()


def join(address: str, *extra: str, env: dict[str, str] | None = None):
    return ember_cli(
        "start", f"--address={address}", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "1", "--object-store-memory", STORE, *extra, env=env,
    )  # fmt: skip


def test_a_tls_cluster_runs_a_task_and_refuses_plaintext(home):
    tls_init("--hosts", "127.0.0.1")
    address = start_head(1, "--tls")
    joined = join(address, "--tls", "--resources", '{"far": 1}')
    assert joined.returncode == 0, joined.stderr
    assert "mutual TLS" in joined.stdout
    host, port = address.rsplit(":", 1)

    # The driver is told nothing: it finds the cluster's TLS record.
    ember.init(address="auto", configure_logging=False)
    try:

        @ember.remote(resources={"far": 1})
        def where():
            import os as _os

            return ember.get_runtime_context().get_node_id(), _os.environ.get(
                tls.CERT_ENV
            )

        node, worker_cert = ember.get(where.remote(), timeout=60)
        assert node != ember.get_runtime_context().get_node_id()
        procs = {pid: cmdline(pid) for pid in _recorded_pids()}
        environs = {pid: _environ(pid) for pid in procs}
    finally:
        ember.shutdown()
    assert ember_cli("status").returncode == 0

    # Every daemon and worker got the files in its environment, none on its argv.
    cert = os.path.join(tls_dir(), "127.0.0.1.pem")
    kinds = " ".join(procs.values())
    assert "ember.control" in kinds
    assert "ember.worker" in kinds
    # A worker renames itself (setproctitle, `ember::IDLE`), which reuses the
    # memory /proc/<pid>/environ reads: ask a worker itself instead.
    assert worker_cert == cert
    # (the fork server needs no TLS: it talks only to its daemon, over a socketpair)
    daemons = [p for p, c in procs.items() if "ember.control" in c or "ember.node" in c]
    assert daemons
    assert all(environs[p].get(tls.CERT_ENV) == cert for p in daemons), procs
    assert not [c for c in procs.values() if ".ember/tls" in c]
    rec = session.tls_record_path(f"tcp:{address}")
    assert stat.S_IMODE(os.stat(rec).st_mode) == 0o600

    # A plaintext peer gets no ember HELLO from the head's port; it is a TLS one.
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(b"\x00" * 64)
        s.settimeout(10)
        try:
            data = s.recv(100)
        except ConnectionResetError:
            data = b""
    assert b"nonce" not in data
    assert asyncio.run(tls.speaks_tls(host, int(port)))


def test_a_peer_without_tls_is_told_the_cluster_uses_tls(home):
    tls_init("--hosts", "127.0.0.1")
    address = start_head(1, "--tls")
    token = session.read_token(f"tcp:{address}")
    # Another user's home: no TLS record, only the token.
    other = os.path.join(home, "other")
    os.makedirs(other)
    env = {
        **os.environ,
        "HOME": other,
        session.TOKEN_ENV: token,
        "EMBER_CONNECT_TIMEOUT_S": "2",
    }
    driver = subprocess.run(
        [sys.executable, "-c", f"import ember; ember.init(address={address!r})"],
        capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert driver.returncode == 1
    assert "this cluster uses TLS" in driver.stderr
    assert "--tls" in driver.stderr

    out = join(address, env=env)
    assert out.returncode == 1
    assert "uses TLS: start this node with --tls" in out.stderr


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [p.split(b"=", 1) for p in f.read().split(b"\0") if b"=" in p]
    return {k.decode(): v.decode() for k, v in pairs}
