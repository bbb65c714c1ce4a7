"""Authenticated frames: a per-connection, per-direction MAC over every frame.

After the handshake each side derives two session keys from the cluster token
and both nonces (one per direction, so a frame cannot be reflected back to
its sender), and every frame then carries a trailing ``TAG_BYTES`` tag::

    tag = HMAC-SHA256(key_dir, seq_u64 | prefix | header | buffers)[:TAG_BYTES]

``seq`` is implicit: each side counts the frames it sent and received on the
connection, so an injected frame (no key), a replayed one (an old ``seq``) or
two frames swapped in order all fail the check, and the receiver closes the
connection.  HMAC-SHA256 was picked over keyed BLAKE2b by measurement
(docs/seams/rpc.md): slightly slower on 100-byte frames, much faster on MiB
buffers on CPUs with SHA extensions; hashlib releases the GIL for large inputs.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from typing import Any

from ember.rpc.errors import ProtocolError

TAG_BYTES = 16


def session_keys(
    token: bytes, server_nonce: bytes, client_nonce: bytes
) -> tuple[bytes, bytes]:
    """``(client-to-server, server-to-client)`` keys of one connection."""

    def key(label: bytes) -> bytes:
        return hmac.new(
            token, label + server_nonce + client_nonce, hashlib.sha256
        ).digest()

    return key(b"ember frames c2s"), key(b"ember frames s2c")


class FrameSigner:
    """Tags the frames one side sends, in the order it sends them."""

    __slots__ = ("_base", "_seq")

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self._seq = 0

    def tag(self, parts: Iterable[Any]) -> bytes:
        """The tag of the next frame, made of ``parts`` (prefix, header, buffers)."""
        h = self._base.copy()
        h.update(self._seq.to_bytes(8, "big"))
        self._seq += 1
        for p in parts:
            h.update(p)
        return h.digest()[:TAG_BYTES]


class FrameVerifier:
    """Checks the tags of the frames one side receives, in order."""

    __slots__ = ("_base", "_seq")

    def __init__(self, key: bytes) -> None:
        self._base = hmac.new(key, digestmod=hashlib.sha256)
        self._seq = 0

    def __call__(self, prefix: bytes, body: memoryview, tag: memoryview) -> None:
        """Raise :class:`ProtocolError` unless ``tag`` is the next frame's."""
        h = self._base.copy()
        h.update(self._seq.to_bytes(8, "big"))
        h.update(prefix)
        h.update(body)
        if not hmac.compare_digest(h.digest()[:TAG_BYTES], tag):
            raise ProtocolError(
                "frame authentication failed: a frame was injected, replayed or "
                "reordered on the way"
            )
        self._seq += 1
