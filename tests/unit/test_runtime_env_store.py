"""The cache policy, the package store and a node's setup of packaged envs (no processes)."""

from __future__ import annotations

import asyncio
import os

import pytest

from ember.control.packages import Packages
from ember.control.storage import MemoryStorage, SqliteStorage
from ember.exceptions import RuntimeEnvSetupError
from ember.node.runtime_envs import RuntimeEnvs
from ember.protocol.messages import GetPackageRequest, PutPackageRequest
from ember.runtime_env import upload
from ember.runtime_env.cache import EnvCache


def test_cache_keeps_referenced_and_evicts_least_recently_used():
    c = EnvCache(cap=2)
    assert c.built("a") == []
    assert c.acquire("a") == []
    assert c.built("b") == []
    assert c.built("c") == ["b"]  # over the cap; a is held: b is the oldest unused
    assert "b" not in c
    assert "a" in c
    assert "c" in c
    assert c.release("a") == []  # at the cap: nothing to drop
    assert c.acquire("c") == []
    assert c.built("d") == ["a"]
    assert c.statistics().evicted == 2
    assert c.refs("c") == 1
    assert c.release("c") == []
    assert c.release("nope") == []


class _Store:
    """A Packages behind the same ``call`` a connection offers."""

    def __init__(self, storage=None, max_bytes=None) -> None:
        self.packages = Packages(storage or MemoryStorage(), max_bytes)
        self.calls: list[str] = []

    async def call(self, method, request):
        self.calls.append(method)
        handler = self.packages.handlers()[method]
        return handler(None, request, []), []


def test_upload_is_chunked_once_and_content_checked(tmp_path, monkeypatch):
    monkeypatch.setattr(upload, "CHUNK_BYTES", 1000)
    store = _Store(SqliteStorage(str(tmp_path / "db.sqlite3")))
    data = os.urandom(3500)
    uri = (
        "gcs://_ember_pkg_"
        + __import__("hashlib").sha256(data).hexdigest()[:32]
        + ".zip"
    )
    assert asyncio.run(upload.upload(store.call, uri, data)) is True
    assert store.calls.count("control.put_package") == 4
    assert asyncio.run(upload.upload(store.call, uri, data)) is False  # stored already
    # a new control service on the same storage still serves it
    again = Packages(SqliteStorage(str(tmp_path / "db.sqlite3")))
    head = again.h_get(None, GetPackageRequest(uri=uri), [])
    assert (head.found, head.chunks, head.size) == (True, 4, 3500)
    got = b"".join(
        again.h_get(None, GetPackageRequest(uri=uri, index=i), []).data
        for i in range(4)
    )
    assert got == data
    wrong = "gcs://_ember_pkg_" + "0" * 32 + ".zip"
    with pytest.raises(ValueError, match="do not match"):
        store.packages.h_put(
            None,
            PutPackageRequest(uri=wrong, index=0, chunks=1, size=3, data=b"abc"),
            [],
        )
    with pytest.raises(ValueError, match="not a package URI"):
        store.packages.h_get(None, GetPackageRequest(uri="gcs://../../etc/passwd"), [])
    small = _Store(max_bytes=10)
    with pytest.raises(ValueError, match="limit"):
        small.packages.h_put(
            None, PutPackageRequest(uri=uri, index=0, chunks=1, size=3500, data=b""), []
        )


def test_node_unpacks_a_package_once_for_concurrent_workers(tmp_path):
    proj = tmp_path / "proj"
    (proj / "pkg").mkdir(parents=True)
    (proj / "mod.py").write_text("VALUE = 7\n")
    (proj / "pkg" / "__init__.py").write_text("")
    env, packages = upload.pack_env(
        {"working_dir": str(proj), "py_modules": [str(proj / "pkg")]}
    )
    store = _Store()
    fetched: list[str] = []

    async def fetch(uri: str) -> bytes:
        fetched.append(uri)
        return packages[uri]

    session = tmp_path / "session"
    session.mkdir(mode=0o700)

    async def main():
        await upload.send(store.call, packages)
        envs = RuntimeEnvs(str(session), fetch, cache_size=1)
        a, b = await asyncio.gather(envs.prepare(env), envs.prepare(env))
        assert a.cwd == b.cwd
        assert os.path.isfile(os.path.join(a.cwd, "mod.py"))
        assert os.path.isfile(os.path.join(a.paths[1], "pkg", "__init__.py"))
        assert a.python == ""  # no pip: the node's own interpreter (forkable)
        assert sorted(fetched) == sorted(packages)  # each fetched once
        assert envs.caches["working_dir"].refs(os.path.basename(a.cwd)) == 2
        envs.release(a)
        envs.release(b)
        # a second node daemon on the same session folder finds it unpacked
        other = RuntimeEnvs(str(session), fetch)
        c = await other.prepare(env)
        assert c.cwd == a.cwd
        assert len(fetched) == 2
        assert oct(os.stat(session / "runtime_resources").st_mode & 0o777) == "0o700"

    asyncio.run(main())


def test_a_missing_package_is_a_setup_error(tmp_path):
    async def fetch(uri: str) -> bytes:
        raise RuntimeEnvSetupError(
            f"the package {uri} is not in the cluster's package store"
        )

    (tmp_path / "s").mkdir(mode=0o700)
    envs = RuntimeEnvs(str(tmp_path / "s"), fetch)
    uri = "gcs://_ember_pkg_" + "1" * 32 + ".zip"
    with pytest.raises(RuntimeEnvSetupError) as info:
        asyncio.run(envs.prepare({"working_dir": uri}))
    assert uri in str(info.value)
    assert "working_dir" in str(info.value)
