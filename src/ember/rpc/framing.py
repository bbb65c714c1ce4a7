"""Sans-IO length-prefixed framing.

A frame is::

    u32 header_len | u16 nbufs | u64 buf_len * nbufs | header | buf_0 | ... | buf_n

The header is a small msgpack document; the buffers are raw payload bytes that
are never copied into the header (large values travel this way).  The decoder
is fed bytes and yields ``(header_bytes, [buffers])``; it checks every length
against limits before it allocates, and raises :class:`ProtocolError` on a
frame it cannot accept.  It never reserves more memory than it has received:
a large frame is kept as the pieces that arrived and joined once when whole
(one copy, as for small frames), so a prefix that merely *claims* a large
frame costs nothing.

With :meth:`FrameDecoder.authenticate`, every later frame is followed by a
tag the decoder hands, with the frame's prefix and body, to a verifier
(:mod:`ember.rpc.frame_mac`) before it yields the frame.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator

from ember.rpc.errors import ProtocolError

_PREFIX = struct.Struct(">IH")
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_BUFFERS = 4096
#: the default cap on one frame after authentication (``Limits.max_frame_bytes``):
#: well above the largest frame ember sends (an 8 MiB object-transfer chunk; headers
#: are capped at MAX_HEADER_BYTES)
MAX_FRAME_BYTES = 256 * 1024**2
#: frames at least this large are received into their own buffer as they arrive
LARGE_FRAME_BYTES = 1024 * 1024


def encode_prefix(header_len: int, buf_lens: list[int]) -> bytes:
    """The fixed prefix for a frame with this header and these buffers."""
    return _PREFIX.pack(header_len, len(buf_lens)) + struct.pack(
        f">{len(buf_lens)}Q", *buf_lens
    )


class FrameDecoder:
    """Accumulates bytes and splits them into frames."""

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        self._buf = bytearray()
        self._need: tuple[int, list[int]] | None = None
        #: a large frame being received: the pieces so far (joined once when whole)
        self._parts: list[bytes] | None = None
        self._got = 0
        self._total = 0
        #: the largest frame accepted; small until the peer has authenticated
        self.max_frame_bytes = max_frame_bytes
        #: checks each frame's trailing tag (``authenticate``); None: no tags
        self._verify: Callable[[bytes, memoryview, memoryview], None] | None = None
        self._tag_bytes = 0
        self._prefix = b""

    def authenticate(
        self, verify: Callable[[bytes, memoryview, memoryview], None], tag_bytes: int
    ) -> None:
        """From the next frame on, each ends in a tag that ``verify`` must accept."""
        self._verify = verify
        self._tag_bytes = tag_bytes

    def feed(self, data: bytes) -> Iterator[tuple[memoryview, list[memoryview]]]:
        """Add ``data``; yield every frame now complete."""
        mv = memoryview(data)
        while True:
            parts = self._parts
            if parts is not None:
                want = self._total - self._got
                if len(mv) < want:
                    if len(mv):
                        # keep the received bytes object itself when it is whole
                        whole = type(data) is bytes and len(mv) == len(data)
                        parts.append(data if whole else bytes(mv))
                        self._got += len(mv)
                    return
                parts.append(bytes(mv[:want]))
                mv = mv[want:]
                self._parts = None
                yield self._split(memoryview(b"".join(parts)))
                continue
            if len(mv):
                self._buf += mv
                mv = mv[len(mv) :]
            frame = self._next()
            if frame is None:
                return
            yield frame

    def _next(self) -> tuple[memoryview, list[memoryview]] | None:
        buf = self._buf
        if self._need is None:
            if len(buf) < _PREFIX.size:
                return None
            header_len, nbufs = _PREFIX.unpack_from(buf, 0)
            if (
                header_len > min(MAX_HEADER_BYTES, self.max_frame_bytes)
                or nbufs > MAX_BUFFERS
            ):
                raise ProtocolError(
                    f"frame header too large ({header_len} bytes, {nbufs} buffers)"
                )
            prefix_len = _PREFIX.size + 8 * nbufs
            if len(buf) < prefix_len:
                return None
            lens = list(struct.unpack_from(f">{nbufs}Q", buf, _PREFIX.size))
            if header_len + sum(lens) > self.max_frame_bytes:
                raise ProtocolError(
                    f"frame too large ({header_len + sum(lens)} bytes, the limit is "
                    f"{self.max_frame_bytes})"
                )
            self._need = (header_len, lens)
            if self._verify is not None:
                self._prefix = bytes(buf[:prefix_len])
            del buf[:prefix_len]
        header_len, lens = self._need
        total = header_len + sum(lens) + self._tag_bytes
        if len(buf) < total:
            if total >= LARGE_FRAME_BYTES:
                # Collect the rest as it arrives; reserve nothing up front.
                self._parts = [bytes(buf)]
                self._got = len(buf)
                self._total = total
                buf.clear()
            return None
        # One copy out of the accumulator; slices below are views of it.
        mv = memoryview(buf)
        frame = bytes(mv[:total])
        mv.release()
        del buf[:total]
        return self._split(memoryview(frame))

    def _split(self, view: memoryview) -> tuple[memoryview, list[memoryview]]:
        assert self._need is not None
        header_len, lens = self._need
        self._need = None
        if self._verify is not None:
            n = self._tag_bytes
            self._verify(self._prefix, view[:-n], view[-n:])
            view = view[:-n]
        header = view[:header_len]
        bufs = []
        off = header_len
        for n in lens:
            bufs.append(view[off : off + n])
            off += n
        return header, bufs

    def pending_bytes(self) -> int:
        """How much is still wanted for the frame being read (0 if unknown)."""
        if self._need is None:
            return 0
        if self._parts is not None:
            return self._total - self._got
        return self._need[0] + sum(self._need[1]) + self._tag_bytes - len(self._buf)

    def buffered_bytes(self) -> int:
        """How much received data this decoder holds now."""
        return len(self._buf) + (self._got if self._parts is not None else 0)
