"""What a frame holds after the handshake: kinds, header codec, method schema, errors.

A frame's header is the msgpack tuple ``(kind, request_id, method, payload)``;
the payload is decoded lazily against the method's struct (:class:`Schema`).
An ERROR payload is :class:`ErrorBody`: the exception's class name, message,
traceback, an optional pickle of it, and its *lineage* (the ``module.qualname``
of its class and bases) so that the caller can match it by class
(:meth:`ember.rpc.errors.RemoteError.is_a`) instead of comparing names.
"""

from __future__ import annotations

import pickle
import traceback
from typing import Any

import msgspec

from ember.rpc.errors import ProtocolError, RemoteError, lineage
from ember.rpc.framing import encode_prefix
from ember.rpc.limits import DEADLINE_CLASSES, Limits

REQUEST, REPLY, ERROR, NOTIFY = 10, 11, 12, 13

#: most buffers handed to one writev (the kernel's IOV_MAX is 1024)
MAX_IOV = 512

encoder = msgspec.msgpack.Encoder()
header_decoder = msgspec.msgpack.Decoder(tuple[int, int, str, msgspec.Raw])


class ErrorBody(msgspec.Struct, array_like=True):
    """The payload of an ERROR frame (older peers send only the first four)."""

    type_name: str
    message: str
    traceback: str = ""
    payload: bytes = b""
    lineage: list[str] = []


_error_decoder = msgspec.msgpack.Decoder(ErrorBody)


def error_body(exc: BaseException) -> ErrorBody:
    """What an ERROR frame says about ``exc``."""
    try:
        payload = pickle.dumps(exc)
    except Exception:  # noqa: BLE001  (user code or user values)
        payload = b""
    tb = "".join(traceback.format_exception(exc))
    return ErrorBody(type(exc).__name__, str(exc), tb, payload, lineage(exc))


def remote_error(raw: msgspec.Raw) -> RemoteError:
    """The :class:`RemoteError` an ERROR frame's payload describes."""
    d = _error_decoder.decode(raw)
    return RemoteError(d.type_name, d.message, d.traceback, d.payload, d.lineage)


class Schema:
    """Request and reply types by method name (from ``ember.protocol``), and limits.

    ``classes`` names each method's deadline class (``control`` if absent);
    ``limits`` says how long each class may take and bounds the connection.
    :attr:`deadlines` maps a method to its deadline in seconds, ``None`` for
    none, or a negative number ``-grace`` for a long poll, whose deadline is
    the request's own ``timeout_s`` plus ``grace`` (none when it waits
    without a bound).
    """

    def __init__(
        self,
        methods: dict[str, tuple[type | None, type | None]],
        classes: dict[str, str] | None = None,
        limits: Limits | None = None,
    ) -> None:
        self._req: dict[str, msgspec.msgpack.Decoder[Any] | None] = {
            m: msgspec.msgpack.Decoder(r) if r else None
            for m, (r, _) in methods.items()
        }
        self._rep: dict[str, msgspec.msgpack.Decoder[Any] | None] = {
            m: msgspec.msgpack.Decoder(r) if r else None
            for m, (_, r) in methods.items()
        }
        self.limits = limits if limits is not None else Limits()
        classes = classes or {}
        unknown = set(classes.values()) - set(DEADLINE_CLASSES)
        if unknown:
            raise ValueError(f"unknown deadline classes {sorted(unknown)}")
        self.classes = {m: classes.get(m, "control") for m in methods}
        self.deadlines: dict[str, float | None] = {
            m: self.limits.deadline(c) for m, c in self.classes.items()
        }

    def decode_request(self, method: str, raw: msgspec.Raw) -> Any:
        try:
            dec = self._req[method]
        except KeyError:
            raise ProtocolError(f"unknown method {method!r}") from None
        return dec.decode(raw) if dec is not None else None

    def decode_reply(self, method: str, raw: msgspec.Raw) -> Any:
        dec = self._rep.get(method)
        return dec.decode(raw) if dec is not None else None


def frame_parts(
    kind: int, req_id: int, method: str, payload: Any, bufs: Any
) -> list[Any]:
    """The byte strings of one frame, to write in order."""
    header = encoder.encode((kind, req_id, method, payload))
    if bufs:
        lens = [memoryview(b).nbytes for b in bufs]
        return [encode_prefix(len(header), lens), header, *bufs]
    return [encode_prefix(len(header), []), header]


def unsent(parts: list[Any], sent: int) -> list[Any]:
    """What of ``parts`` is left after the first ``sent`` bytes went out."""
    for i, p in enumerate(parts):
        n = memoryview(p).nbytes
        if sent < n:
            rest = memoryview(p).cast("B")[sent:] if sent else p
            return [rest, *parts[i + 1 :]]
        sent -= n
    return []
