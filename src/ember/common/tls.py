"""Optional mutual TLS for every TCP connection of a cluster: its SSL contexts.

A process uses TLS when either

- its environment says so (how ``ember start --tls`` configures the daemons
  it starts, and how a user can configure any process by hand)::

      EMBER_USE_TLS=1
      EMBER_TLS_SERVER_CERT=/path/cert.pem   # this machine's certificate chain
      EMBER_TLS_SERVER_KEY=/path/key.pem     # and its private key
      EMBER_TLS_CA_CERT=/path/ca.pem         # the CA that signed every peer's cert

- or :func:`use_files` was called in it: :func:`use_for_cluster` does, in a
  driver's ``ember.init`` and in ``ember status``, with the files ``ember
  start --tls`` recorded for the cluster they join (its TLS record, see
  :mod:`ember.common.session`).  The environment wins over :func:`use_files`.

Both sides present and verify certificates (mutual TLS); host names are not
checked, because nodes are addressed by IP.  Unix sockets stay plaintext
(they never leave the machine).  The HMAC token handshake runs inside TLS.

:func:`speaks_tls` tells a plaintext client whose handshake got no answer
whether the peer is a TLS listener, so that it can say so instead of timing
out with nothing to go on.
"""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from typing import NamedTuple

from ember.common import session

USE_ENV = "EMBER_USE_TLS"
CERT_ENV = "EMBER_TLS_SERVER_CERT"
KEY_ENV = "EMBER_TLS_SERVER_KEY"
CA_ENV = "EMBER_TLS_CA_CERT"

NEEDS_TLS_HINT = (
    "this cluster uses TLS: set EMBER_USE_TLS=1 (with EMBER_TLS_SERVER_CERT, "
    "EMBER_TLS_SERVER_KEY and EMBER_TLS_CA_CERT) or run on a node started with --tls"
)


class TlsFiles(NamedTuple):
    """A node's certificate chain, its private key and the cluster's CA certificate."""

    cert: str
    key: str
    ca: str

    def env(self) -> dict[str, str]:
        """The variables that make a process started with them use these files."""
        return {USE_ENV: "1", CERT_ENV: self.cert, KEY_ENV: self.key, CA_ENV: self.ca}


_used: TlsFiles | None = None


def env_enabled() -> bool:
    return os.environ.get(USE_ENV, "").lower() in ("1", "true", "yes")


def enabled() -> bool:
    return env_enabled() or _used is not None


def use_files(files: TlsFiles | None) -> None:
    """Use ``files`` in this process unless its environment sets TLS (None: stop)."""
    global _used
    _used = files
    server_context.cache_clear()
    client_context.cache_clear()


def _env_files() -> TlsFiles:
    cert = os.environ.get(CERT_ENV, "")
    key = os.environ.get(KEY_ENV, "")
    ca = os.environ.get(CA_ENV, "")
    missing = [n for n, v in ((CERT_ENV, cert), (KEY_ENV, key), (CA_ENV, ca)) if not v]
    if missing:
        raise ValueError(
            f"{USE_ENV} is set but {', '.join(missing)} is not: TLS needs a "
            "certificate, its key and the CA certificate"
        )
    return TlsFiles(cert, key, ca)


def current_files() -> TlsFiles | None:
    """The files this process uses for TLS, None when it speaks plaintext."""
    if env_enabled():
        return _env_files()
    return _used


def make_server_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=files.ca)
    ctx.load_cert_chain(files.cert, files.key)
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def make_client_context(files: TlsFiles) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=files.ca)
    ctx.load_cert_chain(files.cert, files.key)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


@functools.lru_cache(maxsize=1)
def server_context() -> ssl.SSLContext | None:
    files = current_files()
    return None if files is None else make_server_context(files)


@functools.lru_cache(maxsize=1)
def client_context() -> ssl.SSLContext | None:
    files = current_files()
    return None if files is None else make_client_context(files)


def use_for_cluster(address: str) -> bool:
    """Use the TLS record of the cluster at ``address`` here, unless the environment sets TLS.

    Returns whether this process speaks TLS to that cluster now.
    """
    if env_enabled():
        return True
    rec = session.read_tls_record(address) if address.startswith("tcp:") else None
    use_files(None if rec is None else TlsFiles(rec["cert"], rec["key"], rec["ca"]))
    return rec is not None


# -- is the peer a TLS listener? ------------------------------------------------------
def client_hello() -> bytes:
    """The first bytes a TLS client sends (a ClientHello record)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return outgoing.read()


def explain(exc: OSError) -> str:
    """``exc`` as text, saying so when a TLS client reached a plaintext listener."""
    if isinstance(exc, ssl.SSLError) and exc.reason == "WRONG_VERSION_NUMBER":
        return (
            f"{exc}: the peer does not speak TLS (was its cluster started without "
            "--tls, or this process given EMBER_USE_TLS by mistake?)"
        )
    return str(exc)


def looks_like_tls(reply: bytes) -> bool:
    """Whether ``reply`` starts a TLS record (a handshake or an alert, version 3.x).

    An ember plaintext peer starts with a 4-byte frame length, whose first
    byte would have to be 0x15 or 0x16 for a frame of hundreds of megabytes.
    """
    return len(reply) >= 2 and reply[0] in (0x15, 0x16) and reply[1] == 0x03


async def speaks_tls(host: str, port: int, timeout: float = 3.0) -> bool:
    """Whether the listener at ``host:port`` answers a ClientHello as TLS does."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
            try:
                writer.write(client_hello())
                await writer.drain()
                reply = await reader.read(2)
                if len(reply) == 1:
                    reply += await reader.read(1)
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return looks_like_tls(reply)
