"""The cluster's package store: working_dir and py_modules packages by content URI.

A driver uploads each package once (``control.put_package``, in chunks of
at most ``runtime_env/upload.CHUNK_BYTES``); node daemons fetch it chunk by
chunk (``control.get_package``) when a worker needs it. The URI names the
package's SHA-256 (``gcs://_ember_pkg_<digest>.zip``), so an upload whose
bytes do not match its name is refused, and a second upload of the same
content is a no-op. Complete packages live in the control service's storage
(table ``packages``: ``<name>:meta`` and ``<name>:<i>`` rows), so a head
restarted on SQLite or Redis still serves them; chunks of an upload in
progress are kept in memory until the last one arrives.

Theory of operation::

    driver --get_package(uri, -1)--> found? done
           --put_package(uri, i, n)--> partial[uri][i] ... all n --> verify --> storage
    node   --get_package(uri, -1)--> (chunks, size) --get_package(uri, i)--> bytes
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import msgspec

from ember.control.storage import Storage
from ember.protocol.messages import (
    GetPackageReply,
    GetPackageRequest,
    PutPackageReply,
    PutPackageRequest,
)
from ember.runtime_env.fields import PACKAGE_SCHEME
from ember.runtime_env.packing import max_package_bytes

_NAME = re.compile(r"^_ember_pkg_([0-9a-f]{32})\.(zip|whl)$")
#: uploads in progress kept at once (a driver that died mid-upload leaves one)
MAX_PARTIAL = 64


def _name_of(uri: str) -> tuple[str, str]:
    name = uri[len(PACKAGE_SCHEME) :] if uri.startswith(PACKAGE_SCHEME) else ""
    m = _NAME.match(name)
    if m is None:
        raise ValueError(f"{uri!r} is not a package URI of this cluster")
    return name, m.group(1)


class Packages:
    """Handlers of ``control.put_package`` and ``control.get_package``."""

    def __init__(self, storage: Storage, max_bytes: int | None = None) -> None:
        self._storage = storage
        self.max_bytes = max_package_bytes() if max_bytes is None else max_bytes
        self._partial: dict[str, list[bytes | None]] = {}

    def handlers(self) -> dict[str, Any]:
        return {
            "control.put_package": self.h_put,
            "control.get_package": self.h_get,
        }

    def _meta(self, name: str) -> dict[str, int] | None:
        raw = self._storage.get("packages", f"{name}:meta".encode())
        return None if raw is None else msgspec.msgpack.decode(raw)

    def h_put(self, conn: Any, req: PutPackageRequest, bufs: Any) -> PutPackageReply:
        name, digest = _name_of(req.uri)
        if self._meta(name) is not None:
            return PutPackageReply(complete=True)
        if not 0 < req.size <= self.max_bytes:
            raise ValueError(
                f"package {name} is {req.size} bytes; the limit is {self.max_bytes}"
            )
        if not 0 < req.chunks <= req.size or not 0 <= req.index < req.chunks:
            raise ValueError(f"bad chunk {req.index} of {req.chunks} for {name}")
        parts = self._partial.get(name)
        if parts is None or len(parts) != req.chunks:
            while len(self._partial) >= MAX_PARTIAL:
                self._partial.pop(next(iter(self._partial)))
            parts = self._partial[name] = [None] * req.chunks
        parts[req.index] = bytes(req.data)
        if any(p is None for p in parts):
            return PutPackageReply(complete=False)
        del self._partial[name]
        chunks = [p for p in parts if p is not None]
        data = b"".join(chunks)
        if len(data) != req.size or hashlib.sha256(data).hexdigest()[:32] != digest:
            raise ValueError(f"package {name}: its bytes do not match its name")
        for i, chunk in enumerate(chunks):
            self._storage.put("packages", f"{name}:{i}".encode(), chunk)
        meta = {"chunks": len(chunks), "size": len(data)}
        self._storage.put(
            "packages", f"{name}:meta".encode(), msgspec.msgpack.encode(meta)
        )
        return PutPackageReply(complete=True)

    def h_get(self, conn: Any, req: GetPackageRequest, bufs: Any) -> GetPackageReply:
        name, _ = _name_of(req.uri)
        meta = self._meta(name)
        if meta is None:
            return GetPackageReply(found=False)
        reply = GetPackageReply(found=True, chunks=meta["chunks"], size=meta["size"])
        if req.index >= 0:
            if req.index >= meta["chunks"]:
                raise ValueError(f"package {name} has no chunk {req.index}")
            data = self._storage.get("packages", f"{name}:{req.index}".encode())
            if data is None:
                raise ValueError(f"package {name} lost its chunk {req.index}")
            reply.data = data
        return reply
