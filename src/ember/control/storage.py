"""Where the control service keeps the state it must not lose (DESIGN.md §7).

A :class:`Storage` is a dumb table-of-bytes store: ``get``, ``put``,
``delete`` and ``scan`` by table name.  The control service decides what to
persist and how to encode it (msgpack); a backend only keeps bytes.  Tables
used today:

========  ==========================  =====================================
table     key                         value
========  ==========================  =====================================
``kv``    msgpack ``[namespace, key]``  the raw value (function table, job config)
``jobs``  job id                      msgpack ``{"namespace", "pid", "alive"}``
``actors`` actor id                   msgpack :class:`ActorSpec` (every actor;
                                      deleted when the actor is DEAD)
``actor_live`` actor id               msgpack ``ActorLive`` (where an ALIVE actor
                                      runs; ``control.actor_recovery``)
``pgs``   placement group id          msgpack :class:`PlacementGroupInfo` (until removed)
``packages`` ``<name>:meta`` / ``<name>:<i>``  runtime env packages (``control.packages``)
========  ==========================  =====================================

Backends: :class:`MemoryStorage` (the embedded local cluster; nothing
survives the process), :class:`SqliteStorage` (one SQLite file; the
default of ``ember start --head``) and ``RedisStorage`` (a Redis server, so
that a head on another machine can take over: ``control/redis_storage.py``).  Writes happen once per function export,
job, actor creation or actor start, never per task, so SQLite commits each write at once
(WAL journal, ``synchronous=NORMAL``: a commit is a write to the log, not an
fsync).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Iterator
from typing import Protocol

from ember.control.redis_storage import RedisStorage

logger = logging.getLogger(__name__)

TABLES = ("kv", "jobs", "actors", "actor_live", "pgs", "nodes", "packages")


class Storage(Protocol):
    """Tables of bytes keyed by bytes."""

    #: whether what is put survives a restart of the control service
    persistent: bool

    def get(self, table: str, key: bytes) -> bytes | None: ...

    def put(self, table: str, key: bytes, value: bytes) -> None: ...

    def delete(self, table: str, key: bytes) -> None: ...

    def scan(self, table: str) -> Iterator[tuple[bytes, bytes]]: ...

    def close(self) -> None: ...


def _check_table(table: str) -> None:
    if table not in TABLES:
        raise ValueError(f"unknown storage table {table!r}; expected one of {TABLES}")


class MemoryStorage:
    """Dicts in this process (lost when it exits)."""

    persistent = False

    def __init__(self) -> None:
        self._tables: dict[str, dict[bytes, bytes]] = {t: {} for t in TABLES}

    def get(self, table: str, key: bytes) -> bytes | None:
        _check_table(table)
        return self._tables[table].get(key)

    def put(self, table: str, key: bytes, value: bytes) -> None:
        _check_table(table)
        self._tables[table][key] = value

    def delete(self, table: str, key: bytes) -> None:
        _check_table(table)
        self._tables[table].pop(key, None)

    def scan(self, table: str) -> Iterator[tuple[bytes, bytes]]:
        _check_table(table)
        yield from list(self._tables[table].items())

    def close(self) -> None:
        pass


class SqliteStorage:
    """One SQLite file; one ``(key BLOB PRIMARY KEY, value BLOB)`` table per table."""

    persistent = True

    def __init__(self, path: str) -> None:
        self.path = path
        parent = os.path.dirname(os.path.abspath(path))
        os.makedirs(parent, exist_ok=True)
        # The KV holds pickled code of the cluster's users: the file is 0600 before
        # SQLite opens it, so its -wal and -shm files (same mode as the database) are too.
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600))
        os.chmod(path, 0o600)
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        for suffix in ("-wal", "-shm"):  # left by an older ember with wider modes
            if os.path.exists(path + suffix):
                os.chmod(path + suffix, 0o600)
        for t in TABLES:
            self._db.execute(
                f"CREATE TABLE IF NOT EXISTS {t} (key BLOB PRIMARY KEY, value BLOB NOT NULL)"
            )

    def get(self, table: str, key: bytes) -> bytes | None:
        _check_table(table)
        row = self._db.execute(
            f"SELECT value FROM {table} WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def put(self, table: str, key: bytes, value: bytes) -> None:
        _check_table(table)
        self._db.execute(
            f"INSERT OR REPLACE INTO {table} (key, value) VALUES (?, ?)", (key, value)
        )

    def delete(self, table: str, key: bytes) -> None:
        _check_table(table)
        self._db.execute(f"DELETE FROM {table} WHERE key = ?", (key,))

    def scan(self, table: str) -> Iterator[tuple[bytes, bytes]]:
        _check_table(table)
        rows = self._db.execute(
            f"SELECT key, value FROM {table} ORDER BY rowid"
        ).fetchall()
        for k, v in rows:
            yield bytes(k), bytes(v)

    def close(self) -> None:
        self._db.close()


def open_storage(spec: str, session_dir: str) -> Storage:
    """``memory``, ``sqlite`` (``<session_dir>/control.sqlite3``), ``sqlite:PATH`` or
    ``redis://HOST:PORT[/DB]`` (:mod:`ember.control.redis_storage`)."""
    if spec in ("", "memory"):
        return MemoryStorage()
    if spec == "sqlite":
        return SqliteStorage(os.path.join(session_dir, "control.sqlite3"))
    if spec.startswith("sqlite:"):
        return SqliteStorage(os.path.expanduser(spec[len("sqlite:") :]))
    if spec.startswith(("redis://", "rediss://")):
        return RedisStorage(spec, TABLES)
    raise ValueError(
        f"bad storage {spec!r}: expected 'memory', 'sqlite', 'sqlite:PATH' or "
        "'redis://HOST:PORT[/DB]'"
    )
