"""Where job records and uploaded packages live: the control service's KV and package store.

The job server reaches the control service through protocol stubs only
(``control.kv_put`` / ``control.kv_get``, ``control.put_package`` /
``control.get_package``) over one authenticated connection, opened lazily
and opened again after the head restarts (:class:`ControlLink`: a call that
meets a closed connection reconnects with backoff, for up to
``EMBER_JOBS_HEAD_WAIT_S``, 60 s by default).

Records (:class:`JobStore`) are JSON under namespace ``jobs_api``, key
``job:<submission id>``; the key ``index`` holds the list of submission ids
in submission order (the control service has no key listing). A deleted
record is overwritten with an empty value and leaves the index. The control
service stores its KV in its storage (SQLite or Redis), so records survive a
head restart. One job server writes them, on one event loop; an
``asyncio.Lock`` orders the index updates.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from ember.dashboard.jobs.records import JobRecord
from ember.protocol.messages import (
    SCHEMA,
    GetPackageRequest,
    KvGetRequest,
    KvPutRequest,
)
from ember.rpc.connection import Connection, connect
from ember.rpc.errors import (
    AuthenticationError,
    ConnectionClosedError,
    ConnectionLostError,
    RpcTimeoutError,
)
from ember.runtime_env import upload
from ember.runtime_env.packing import PREFIX, package_name, package_uri

NAMESPACE = "jobs_api"
ALIASES = "jobs_api_pkg"
_INDEX = b"index"
_RETRYABLE = (ConnectionLostError, ConnectionClosedError, RpcTimeoutError, OSError)


def head_wait_s() -> float:
    return float(os.environ.get("EMBER_JOBS_HEAD_WAIT_S", "60"))


def rpc_address(address: str) -> str:
    """``tcp:HOST:PORT`` / ``unix:PATH`` for a control address given either way."""
    return address if address.startswith(("tcp:", "unix:")) else f"tcp:{address}"


class ControlLink:
    """One connection to the control service, made again when it is lost."""

    def __init__(self, address: str, token: str) -> None:
        self.address = rpc_address(address)
        self._token = token.encode()
        self._conn: Connection | None = None
        self._lock = asyncio.Lock()

    async def _connection(self) -> Connection:
        async with self._lock:
            if self._conn is None or self._conn.is_closed():
                self._conn = await connect(
                    self.address, token=self._token, schema=SCHEMA, timeout=10
                )
            return self._conn

    async def call(self, method: str, req: Any) -> tuple[Any, Any]:
        """``method(req)``'s reply and buffers; waits out a head restart."""
        deadline = time.monotonic() + head_wait_s()
        delay = 0.05
        while True:
            try:
                conn = await self._connection()
                return await conn.call(method, req)
            except AuthenticationError:
                raise
            except _RETRYABLE as exc:
                if self._conn is not None and self._conn.is_closed():
                    self._conn = None
                if time.monotonic() + delay > deadline:
                    raise ConnectionLostError(
                        f"the control service at {self.address} did not answer "
                        f"for {head_wait_s():.0f} s (EMBER_JOBS_HEAD_WAIT_S): {exc}"
                    ) from exc
                await asyncio.sleep(delay)
                delay = min(1.0, delay * 2)

    async def kv_get(self, namespace: str, key: bytes) -> bytes | None:
        reply, _ = await self.call("control.kv_get", KvGetRequest(namespace, key))
        value: bytes | None = reply.value
        return value

    async def kv_put(self, namespace: str, key: bytes, value: bytes) -> None:
        await self.call("control.kv_put", KvPutRequest(namespace, key, value))

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class JobStore:
    """Job records in the control service's KV (see the module docstring)."""

    def __init__(self, link: ControlLink) -> None:
        self._link = link
        self._lock = asyncio.Lock()

    async def ids(self) -> list[str]:
        raw = await self._link.kv_get(NAMESPACE, _INDEX)
        ids: list[str] = json.loads(raw) if raw else []
        return ids

    async def get(self, submission_id: str) -> JobRecord | None:
        raw = await self._link.kv_get(NAMESPACE, _key(submission_id))
        return JobRecord.from_bytes(raw) if raw else None

    async def all(self) -> list[JobRecord]:
        """Every record, in submission order."""
        found = await asyncio.gather(*(self.get(sid) for sid in await self.ids()))
        return [rec for rec in found if rec is not None]

    async def add(self, record: JobRecord) -> bool:
        """Store a new record; False if its submission id is taken."""
        async with self._lock:
            ids = await self.ids()
            if record.submission_id in ids:
                return False
            await self.put(record)
            ids.append(record.submission_id)
            await self._link.kv_put(NAMESPACE, _INDEX, json.dumps(ids).encode())
            return True

    async def put(self, record: JobRecord) -> None:
        await self._link.kv_put(
            NAMESPACE, _key(record.submission_id), record.to_bytes()
        )

    async def delete(self, submission_id: str) -> None:
        async with self._lock:
            ids = [i for i in await self.ids() if i != submission_id]
            await self._link.kv_put(NAMESPACE, _INDEX, json.dumps(ids).encode())
            await self._link.kv_put(NAMESPACE, _key(submission_id), b"")


def _key(submission_id: str) -> bytes:
    return f"job:{submission_id}".encode()


class PackageStore:
    """Uploaded working_dir / py_modules zips, in the runtime-env package store.

    ember's own client names a package by the SHA-256 of its bytes
    (``gcs://_ember_pkg_<digest>.zip``), which the store verifies. A package
    uploaded under another name (Ray's client: ``_ray_pkg_<hash>.zip``) is
    stored under its ember name and the other name is kept as an alias
    (namespace ``jobs_api_pkg``), which :meth:`resolve` follows.
    """

    def __init__(self, link: ControlLink) -> None:
        self._link = link

    async def resolve(self, uri: str) -> str | None:
        """The store's URI for ``uri`` (itself or its alias), None if not stored."""
        name = package_name(uri)
        if not name.startswith(PREFIX):
            alias = await self._link.kv_get(ALIASES, name.encode())
            if not alias:
                return None
            uri = alias.decode()
        reply, _ = await self._link.call(
            "control.get_package", GetPackageRequest(uri=uri)
        )
        return uri if reply.found else None

    async def put(self, uri: str, data: bytes) -> str:
        """Store ``data`` named ``uri``; the store's URI for it."""
        name = package_name(uri)
        if name.startswith(PREFIX):
            await upload.upload(self._link.call, uri, data)
            return uri
        ext = ".whl" if name.endswith(".whl") else ".zip"
        own = package_uri(data, ext)
        await upload.upload(self._link.call, own, data)
        await self._link.kv_put(ALIASES, name.encode(), own.encode())
        return own

    async def fetch(self, uri: str) -> bytes:
        """The bytes of a stored package."""
        reply, _ = await self._link.call(
            "control.get_package", GetPackageRequest(uri=uri)
        )
        if not reply.found:
            raise FileNotFoundError(f"package {uri} is not in the cluster's store")
        parts = []
        for i in range(reply.chunks):
            chunk, _ = await self._link.call(
                "control.get_package", GetPackageRequest(uri=uri, index=i)
            )
            parts.append(bytes(chunk.data))
        return b"".join(parts)
