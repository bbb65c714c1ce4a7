"""The TLS folder ``ember tls init`` writes, and finding the files a node or driver uses.

Layout (the folder 0700, every file 0600, written atomically by
:mod:`ember.common.private_files`)::

    ~/.ember/tls/
        ca.pem          the cluster's CA certificate: copy it to every machine
        ca.key          the CA's private key: it stays here (it signs new nodes)
        <host>.pem      the certificate of the node <host> (an IP or a name)
        <host>.key      and its private key: copy both to <host> only

``ember start --tls`` with no paths uses ``ca.pem`` and the pair of the
first of this machine's names (its node IP address, host name, fully
qualified name) that has one; a folder holding exactly one node pair is
used whatever its name.  The TLS record of a cluster
(:func:`ember.common.session.write_tls_record`) then tells drivers on this
machine which files to use for that cluster (:func:`ember.common.tls.use_for_cluster`).
"""

from __future__ import annotations

import os
import socket
import ssl
from collections.abc import Iterable

from ember.common import session, tls, tls_certs
from ember.common.private_files import (
    check_private_dir,
    ensure_private_dir,
    ensure_private_dirs,
    read_private,
    write_private,
)
from ember.common.tls import TlsFiles

CA_CERT = "ca.pem"
CA_KEY = "ca.key"
CERT_SUFFIX = ".pem"
KEY_SUFFIX = ".key"
DEFAULT_DAYS = 365
CA_NAME = "ember cluster CA"


class TlsSetupError(ValueError):
    """The TLS folder or files cannot be used as asked (the message says what to do)."""


def default_dir() -> str:
    return os.path.join(session.user_dir(), "tls")


def _folder(path: str | None, *, create: bool) -> str:
    """The TLS folder (``~/.ember/tls`` if None), made 0700 or checked."""
    if path is None:
        if create:
            return ensure_private_dirs(session.user_dir(), "tls")
        return check_private_dir(default_dir())
    path = os.path.abspath(os.path.expanduser(path))
    if create:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        return ensure_private_dir(path)
    return check_private_dir(path)


def check_host(host: str) -> str:
    """``host`` if it can name a node's files (an IP address or a host name)."""
    ok = host and host[0] not in ".-" and all(c.isalnum() or c in ".-_:" for c in host)
    if not ok or host == "ca":
        raise TlsSetupError(
            f"{host!r} is not a host name or IP address ember can name a certificate after"
        )
    return host


def node_files(folder: str, host: str) -> TlsFiles:
    return TlsFiles(
        cert=os.path.join(folder, host + CERT_SUFFIX),
        key=os.path.join(folder, host + KEY_SUFFIX),
        ca=os.path.join(folder, CA_CERT),
    )


def _write_node(
    folder: str, ca: tls_certs.Issued, host: str, days: int, force: bool
) -> list[str]:
    files = node_files(folder, host)
    if not force and (os.path.lexists(files.cert) or os.path.lexists(files.key)):
        raise TlsSetupError(f"{files.cert} exists already: pass --force to replace it")
    node = tls_certs.make_node_cert(ca, host, days)
    write_private(files.key, node.key_pem)
    write_private(files.cert, node.cert_pem)
    return [files.cert, files.key]


def init_folder(
    path: str | None, hosts: Iterable[str], days: int, *, force: bool
) -> tuple[str, list[str]]:
    """Make a new CA and a certificate per host in the folder; (folder, files written)."""
    hosts = [check_host(h) for h in hosts]
    folder = _folder(path, create=True)
    ca_cert, ca_key = os.path.join(folder, CA_CERT), os.path.join(folder, CA_KEY)
    if not force and (os.path.lexists(ca_cert) or os.path.lexists(ca_key)):
        raise TlsSetupError(
            f"{folder} holds a CA already: add nodes to it with --add-node HOST, "
            "or pass --force to make a new CA (every node then needs new files)"
        )
    ca = tls_certs.make_ca(CA_NAME, days)
    write_private(ca_key, ca.key_pem)
    write_private(ca_cert, ca.cert_pem)
    written = [ca_cert, ca_key]
    for host in hosts:
        written += _write_node(folder, ca, host, days, force)
    return folder, written


def add_nodes(
    path: str | None, hosts: Iterable[str], days: int, *, force: bool
) -> tuple[str, list[str]]:
    """Certificates for more hosts, signed by the folder's CA; (folder, files written)."""
    hosts = [check_host(h) for h in hosts]
    try:
        folder = _folder(path, create=False)
    except FileNotFoundError:
        folder = path or default_dir()
        raise TlsSetupError(
            f"{folder} does not exist: make the CA first with 'ember tls init'"
        ) from None
    cert = read_private(os.path.join(folder, CA_CERT))
    key = read_private(os.path.join(folder, CA_KEY))
    if cert is None or key is None:
        raise TlsSetupError(
            f"{folder} has no {CA_CERT} and {CA_KEY}: run --add-node where "
            "'ember tls init' made the CA (the CA key stays there)"
        )
    ca = tls_certs.Issued(cert.encode(), key.encode())
    written: list[str] = []
    for host in hosts:
        written += _write_node(folder, ca, host, days, force)
    return folder, written


def this_machine_names(node_ip: str | None) -> list[str]:
    """The names a node's files may have here: its IP, host name, qualified name."""
    names = [node_ip] if node_ip else []
    names += [socket.gethostname(), socket.getfqdn()]
    return list(dict.fromkeys(n for n in names if n))


def find_node_files(path: str | None, names: list[str]) -> TlsFiles:
    """This node's files in the TLS folder: the first of ``names`` with a pair."""
    shown = path or "~/.ember/tls"
    try:
        folder = _folder(path, create=False)
    except FileNotFoundError:
        raise TlsSetupError(
            f"--tls found no {shown}: make the cluster's files with 'ember tls init' "
            "(and copy ca.pem and this machine's pair there), or pass --tls-cert, "
            "--tls-key and --tls-ca"
        ) from None
    for name in names:
        files = node_files(folder, name)
        if os.path.exists(files.cert) and os.path.exists(files.key):
            return files
    pairs = sorted(
        f[: -len(CERT_SUFFIX)]
        for f in os.listdir(folder)
        if f.endswith(CERT_SUFFIX)
        and f != CA_CERT
        and os.path.exists(os.path.join(folder, f[: -len(CERT_SUFFIX)] + KEY_SUFFIX))
    )
    if len(pairs) == 1:
        return node_files(folder, pairs[0])
    raise TlsSetupError(
        f"{shown} has no certificate for this machine (looked for "
        f"{', '.join(n + CERT_SUFFIX for n in names)}; found "
        f"{', '.join(p + CERT_SUFFIX for p in pairs) or 'none'}): make one with "
        "'ember tls init --add-node HOST' where the CA is, or pass --tls-cert, "
        "--tls-key and --tls-ca"
    )


def check_files(files: TlsFiles) -> TlsFiles:
    """Absolute paths of ``files`` once they load and the CA signed the certificate."""
    files = TlsFiles(*(os.path.abspath(os.path.expanduser(p)) for p in files))
    try:
        tls.make_server_context(files)
        tls.make_client_context(files)
        with open(files.cert, "rb") as c, open(files.ca, "rb") as a:
            tls_certs.check_signed_by(c.read(), a.read())
    except (OSError, ssl.SSLError, tls_certs.CertError) as exc:
        raise TlsSetupError(
            f"cannot use the certificate {files.cert} (key {files.key}, CA "
            f"{files.ca}): {exc}"
        ) from exc
    return files


def record_for_cluster(address: str, files: TlsFiles | None) -> None:
    """Remember (or forget) the files the cluster at ``address`` is joined with here."""
    session.write_tls_record(address, None if files is None else files._asdict())
