"""Authenticated frames: a per-connection, per-direction MAC over every frame.

After the handshake each side derives two session keys from the cluster token
and both nonces (one per direction, so a frame cannot be reflected back to
its sender), and every frame then carries a trailing ``TAG_BYTES`` tag::

    small frame:  tag = BLAKE2b(key = k_small, seq_u64 | prefix | header | buffers)[:16]
    large frame:  tag = Poly1305(key = BLAKE2b(key = k_large, seq_u64),
                                 prefix | header | buffers)

``seq`` is implicit: each side counts the frames it sent and received on the
connection, so an injected frame (no key), a replayed one (an old ``seq``) or
two frames swapped in order all fail the check, and the receiver closes the
connection.  The MAC is chosen by the frame's size, by measurement
(docs/seams/rpc.md): keyed BLAKE2b for small frames (copying its keyed state
costs a fraction of OpenSSL's HMAC copy), and from ``LARGE_MAC_BYTES`` on
Poly1305 (via ``cryptography``), a one-time authenticator keyed afresh for
every frame from the direction's key and ``seq`` (so no key is used twice);
it runs at about 3.5x HMAC-SHA256's speed on MiB buffers, which bounded
transfers between nodes.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.poly1305 import Poly1305

from ember.rpc.errors import ProtocolError

TAG_BYTES = 16
#: frames of at least this many bytes (prefix + header + buffers) are tagged with
#: Poly1305, smaller ones with keyed BLAKE2b (both ends decide by the same size)
LARGE_MAC_BYTES = 64 * 1024


def session_keys(
    token: bytes, server_nonce: bytes, client_nonce: bytes
) -> tuple[bytes, bytes]:
    """``(client-to-server, server-to-client)`` keys of one connection."""

    def key(label: bytes) -> bytes:
        return hmac.new(
            token, label + server_nonce + client_nonce, hashlib.sha256
        ).digest()

    return key(b"ember frames c2s"), key(b"ember frames s2c")


class _Mac:
    """The keyed prototypes of one direction; copied per frame."""

    __slots__ = ("_kdf", "_seq", "_small")

    def __init__(self, key: bytes) -> None:
        small_key = hmac.new(key, b"blake2b", hashlib.sha256).digest()
        large_key = hmac.new(key, b"poly1305", hashlib.sha256).digest()
        self._small = hashlib.blake2b(key=small_key, digest_size=TAG_BYTES)
        self._kdf = hashlib.blake2b(key=large_key, digest_size=32)
        self._seq = 0

    def _start(self, nbytes: int) -> tuple[Any, Callable[[], bytes]]:
        """``(hasher, finish)`` for the next frame of ``nbytes`` bytes."""
        seq = self._seq.to_bytes(8, "big")
        if nbytes < LARGE_MAC_BYTES:
            h = self._small.copy()
            h.update(seq)
            return h, h.digest
        kdf = self._kdf.copy()
        kdf.update(seq)
        p = Poly1305(kdf.digest())
        return p, p.finalize


def _nbytes(parts: list[Any]) -> int:
    return sum(p.nbytes if isinstance(p, memoryview) else len(p) for p in parts)


class FrameSigner(_Mac):
    """Tags the frames one side sends, in the order it sends them."""

    __slots__ = ()

    def tag(self, parts: list[Any]) -> bytes:
        """The tag of the next frame, made of ``parts`` (prefix, header, buffers)."""
        if len(parts) == 2 and len(parts[1]) < LARGE_MAC_BYTES - 64:
            n = 0  # a small frame without buffers: the common case
        else:
            n = _nbytes(parts)
        h, finish = self._start(n)
        self._seq += 1
        for p in parts:
            h.update(p)
        return finish()[:TAG_BYTES]


class FrameVerifier(_Mac):
    """Checks the tags of the frames one side receives, in order."""

    __slots__ = ()

    def __call__(self, prefix: bytes, body: memoryview, tag: memoryview) -> None:
        """Raise :class:`ProtocolError` unless ``tag`` is the next frame's."""
        h, finish = self._start(len(prefix) + body.nbytes)
        h.update(prefix)
        h.update(body)
        if not hmac.compare_digest(finish()[:TAG_BYTES], tag):
            raise ProtocolError(
                "frame authentication failed: a frame was injected, replayed or "
                "reordered on the way"
            )
        self._seq += 1
