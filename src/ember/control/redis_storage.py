"""The control service's tables in Redis, so that another head can take the cluster over.

``ember start --head --storage redis://HOST:PORT[/DB]`` keeps each table as one
Redis hash (``ember:<table>``, field = key, value = value).  A control service
started anywhere against the same Redis reloads the same state.

Reads happen once, at start (``scan``); they wait for Redis to answer (up to
``connect_timeout_s``).  Writes never block the control service's event loop:
``put`` and ``delete`` append to an ordered queue that one thread applies, and
while Redis is unreachable (restarting, say) that thread retries with backoff,
keeping the order, so nothing written meanwhile is lost as long as this process
lives.  ``close`` flushes the queue (bounded).  The queue is in memory: a write
acknowledged less than a round trip before this process is killed may be lost,
as with SQLite's ``synchronous=NORMAL``.

The password, if Redis needs one, comes from ``EMBER_REDIS_PASSWORD`` (never
from the URL: the URL is on the control service's command line).  ``rediss://``
uses TLS.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse

logger = logging.getLogger(__name__)

PASSWORD_ENV = "EMBER_REDIS_PASSWORD"
_STOP = object()


class RedisStorage:
    """Tables as Redis hashes, written behind by one thread (module docstring)."""

    persistent = True

    def __init__(
        self, url: str, tables: tuple[str, ...], connect_timeout_s: float = 30.0
    ) -> None:
        try:
            import redis
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ValueError(
                "--storage redis://... needs the redis package: pip install 'ember[redis]'"
            ) from exc
        parsed = urlparse(url)
        if parsed.password:
            raise ValueError(
                "put the Redis password in the EMBER_REDIS_PASSWORD environment variable, "
                "not in the --storage URL (command lines are visible to every user)"
            )
        self.path = url  # what `ember status` shows as the state's location
        self._tables = tables
        self._client: Any = redis.Redis.from_url(
            url,
            password=os.environ.get(PASSWORD_ENV) or None,
            socket_timeout=5.0,
            socket_connect_timeout=5.0,
        )
        self._errors: tuple[type[BaseException], ...] = (
            redis.ConnectionError,
            redis.TimeoutError,
            OSError,
        )
        self._wait_for_redis(connect_timeout_s)
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(
            target=self._writer, name="redis-writer", daemon=True
        )
        self._thread.start()

    def _wait_for_redis(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                self._client.ping()
                return
            except self._errors as exc:
                if time.monotonic() > deadline:
                    raise ValueError(
                        f"cannot reach Redis at {self.path} ({exc}); start it, or check "
                        "the address and EMBER_REDIS_PASSWORD"
                    ) from exc
                time.sleep(0.2)

    def _name(self, table: str) -> str:
        if table not in self._tables:
            raise ValueError(
                f"unknown storage table {table!r}; expected one of {self._tables}"
            )
        return f"ember:{table}"

    # -- reads (at start) ---------------------------------------------------------------
    def get(self, table: str, key: bytes) -> bytes | None:
        self._flush(10.0)
        value = self._retrying(lambda: self._client.hget(self._name(table), key))
        return None if value is None else bytes(value)

    def scan(self, table: str) -> Iterator[tuple[bytes, bytes]]:
        self._flush(10.0)
        items = self._retrying(lambda: self._client.hgetall(self._name(table)))
        for k, v in items.items():
            yield bytes(k), bytes(v)

    # -- writes (behind) ----------------------------------------------------------------
    def put(self, table: str, key: bytes, value: bytes) -> None:
        self._queue.put(("hset", self._name(table), key, value))

    def delete(self, table: str, key: bytes) -> None:
        self._queue.put(("hdel", self._name(table), key, None))

    def _writer(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                self._queue.task_done()
                return
            self._retrying(lambda item=item: self._apply(*item))
            self._queue.task_done()

    def _apply(self, op: str, name: str, key: bytes, value: bytes | None) -> None:
        if op == "hset":
            self._client.hset(name, key, value)
        else:
            self._client.hdel(name, key)

    def _retrying(self, op: Any) -> Any:
        delay, warned = 0.05, False
        while True:
            try:
                return op()
            except self._errors as exc:
                if not warned:
                    logger.warning(
                        "Redis at %s is unreachable (%s); retrying", self.path, exc
                    )
                    warned = True
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _flush(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.01)

    def close(self) -> None:
        self._flush(10.0)
        self._queue.put(_STOP)
        self._thread.join(5.0)
        self._client.close()
