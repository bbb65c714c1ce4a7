"""Optional TLS for every TCP connection of a cluster.

Set, in the environment of every process of the cluster (``ember start``
passes its ``--tls-*`` options down this way)::

    EMBER_USE_TLS=1
    EMBER_TLS_SERVER_CERT=/path/cert.pem   # this machine's certificate chain
    EMBER_TLS_SERVER_KEY=/path/key.pem     # and its private key
    EMBER_TLS_CA_CERT=/path/ca.pem         # the CA that signed every peer's cert

Both sides present and verify certificates (mutual TLS); host names are not
checked, because nodes are addressed by IP.  Unix sockets stay plaintext
(they never leave the machine).  The HMAC token handshake runs inside TLS.
"""

from __future__ import annotations

import functools
import os
import ssl


def enabled() -> bool:
    return os.environ.get("EMBER_USE_TLS", "").lower() in ("1", "true", "yes")


def _paths() -> tuple[str, str, str]:
    cert = os.environ.get("EMBER_TLS_SERVER_CERT", "")
    key = os.environ.get("EMBER_TLS_SERVER_KEY", "")
    ca = os.environ.get("EMBER_TLS_CA_CERT", "")
    missing = [
        n
        for n, v in (
            ("EMBER_TLS_SERVER_CERT", cert),
            ("EMBER_TLS_SERVER_KEY", key),
            ("EMBER_TLS_CA_CERT", ca),
        )
        if not v
    ]
    if missing:
        raise ValueError(
            f"EMBER_USE_TLS is set but {', '.join(missing)} is not: TLS needs a "
            "certificate, its key and the CA certificate"
        )
    return cert, key, ca


@functools.lru_cache(maxsize=1)
def server_context() -> ssl.SSLContext | None:
    if not enabled():
        return None
    cert, key, ca = _paths()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@functools.lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext | None:
    if not enabled():
        return None
    cert, key, ca = _paths()
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=ca)
    ctx.load_cert_chain(cert, key)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx
