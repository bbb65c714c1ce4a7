"""The driver's side of working_dir and py_modules: pack, upload once, name by URI.

``init(runtime_env=...)`` calls :func:`resolve` on the job's (normalised)
env: every local path in ``working_dir`` and ``py_modules`` is packed
(:mod:`ember.runtime_env.packing`), uploaded to the control service's
package store unless it is there already, and replaced by its
``gcs://`` URI; ``excludes`` has done its job and is dropped. Tasks and
actors then carry only URIs, which every node resolves the same way.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from ember.protocol.messages import GetPackageRequest, PutPackageRequest
from ember.runtime_env import packing
from ember.runtime_env.fields import is_uri

logger = logging.getLogger(__name__)

#: the largest chunk of one put_package / get_package
CHUNK_BYTES = 4 * 1024 * 1024

Call = Callable[[str, Any], Awaitable[tuple[Any, Any]]]


async def upload(call: Call, uri: str, data: bytes) -> bool:
    """Store ``data`` under ``uri`` unless the store has it; whether it was sent."""
    reply, _ = await call("control.get_package", GetPackageRequest(uri=uri))
    if reply.found:
        return False
    chunks = max(1, -(-len(data) // CHUNK_BYTES))
    logger.info("uploading package %s (%d bytes) to the cluster", uri, len(data))
    for i in range(chunks):
        piece = data[i * CHUNK_BYTES : (i + 1) * CHUNK_BYTES]
        await call(
            "control.put_package",
            PutPackageRequest(
                uri=uri, index=i, chunks=chunks, size=len(data), data=piece
            ),
        )
    return True


def pack(
    path: str, excludes: list[str] | None, *, as_module: bool
) -> tuple[str, bytes]:
    """``(uri, bytes)`` of one local working_dir or py_modules entry."""
    data, ext = packing.pack_path(path, excludes, as_module=as_module)
    return packing.package_uri(data, ext), data


def pack_env(env: dict[str, Any]) -> tuple[dict[str, Any], dict[str, bytes]]:
    """``env`` with its local paths replaced by package URIs, and the packages
    to upload by URI (packing happens here, before any process starts, so a
    package over the limit fails ``init()`` at once)."""
    out = dict(env)
    excludes = out.pop("excludes", None)
    packages: dict[str, bytes] = {}
    wd = out.get("working_dir")
    if wd and not is_uri(wd):
        uri, packages_data = pack(wd, excludes, as_module=False)
        packages[uri] = packages_data
        out["working_dir"] = uri
    modules = out.get("py_modules")
    if modules:
        uris = []
        for m in modules:
            if is_uri(m):
                uris.append(m)
                continue
            uri, data = pack(m, excludes, as_module=True)
            packages[uri] = data
            uris.append(uri)
        out["py_modules"] = uris
    return out, packages


async def send(call: Call, packages: dict[str, bytes]) -> None:
    """Upload each of ``packages`` the store does not have yet."""
    for uri, data in packages.items():
        await upload(call, uri, data)
