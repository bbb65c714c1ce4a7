"""The seam between ember.api and its runtimes: every public call goes through one Runtime."""

from __future__ import annotations

from typing import Any

import grimp
import pytest

import ember
from ember.api import runtime_access
from ember.api.actor import ActorHandle
from ember.api.local_mode import LocalModeRuntime
from ember.runtime.object_ref import ObjectRef


class FakeRuntime:
    """Records the calls the public API makes; answers with canned values."""

    namespace = "fake-ns"
    job_id = b"\x00\x00\x00\x07"
    node_id = b"\x01" * 16
    worker_id = b"\x02" * 16
    node_ip = "10.0.0.1"
    placement_groups: Any = None

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.ref = ObjectRef(b"\x03" * 20, None, _register=False)

    def submit_task(self, function, export_cache, name, args, kwargs, options, n):
        self.calls.append(f"submit_task:{name}:{args}:{n}")
        return self.ref

    def create_actor(self, cls, export_cache, meta, args, kwargs, options):
        self.calls.append(f"create_actor:{cls.__name__}")
        return ActorHandle(b"\x04" * 16, cls.__name__, meta, 0)

    def call_actor(self, handle, method, meta, options, args, kwargs):
        self.calls.append(f"call_actor:{method}:{args}")
        return self.ref

    def get_actor(self, name, namespace):
        self.calls.append(f"get_actor:{name}:{namespace}")
        return ActorHandle(b"\x05" * 16, "A", {}, 0)

    def kill(self, handle, no_restart):
        self.calls.append(f"kill:{no_restart}")

    def list_named_actors(self, all_namespaces):
        self.calls.append("list_named_actors")
        return []

    def get(self, refs, timeout):
        self.calls.append(f"get:{len(refs)}:{timeout}")
        return ["value"] * len(refs)

    def put(self, value):
        self.calls.append(f"put:{value}")
        return self.ref

    def wait(self, refs, num_returns, timeout, fetch_local):
        self.calls.append(f"wait:{num_returns}")
        return [True] * len(refs)

    def cancel(self, ref, force, recursive):
        self.calls.append(f"cancel:{force}")

    def nodes(self):
        return [{"NodeID": self.node_id.hex()}]

    def cluster_resources(self):
        return {"CPU": 3.0}

    def available_resources(self):
        return {"CPU": 1.0}

    def context_info(self):
        return {"address": "fake"}

    def shutdown(self):
        self.calls.append("shutdown")


@pytest.fixture
def fake():
    rt = FakeRuntime()
    runtime_access.install(rt)
    yield rt
    runtime_access.install(None)


def test_public_api_calls_go_to_the_installed_runtime(fake):
    @ember.remote
    def f(x):
        return x

    @ember.remote
    class A:
        def m(self, y):
            return y

    assert ember.get(f.remote(1)) == "value"
    a = A.remote()
    assert ember.get([a.m.remote(2)], timeout=5) == ["value"]
    ember.put(7)
    assert ember.wait([fake.ref]) == ([fake.ref], [])
    ember.cancel(fake.ref, force=True)
    ember.kill(ember.get_actor("named", namespace="ns"), no_restart=False)
    assert ember.cluster_resources() == {"CPU": 3.0}
    assert ember.available_resources() == {"CPU": 1.0}
    ctx = ember.get_runtime_context()
    assert ctx.get_node_id() == fake.node_id.hex()
    assert ctx.get_job_id() == fake.job_id.hex()
    assert ctx.namespace == "fake-ns"
    assert fake.calls == [
        "submit_task:f:(1,):1",
        "get:1:None",
        "create_actor:A",
        "call_actor:m:(2,)",
        "get:1:5",
        "put:7",
        "wait:1",
        "cancel:True",
        "get_actor:named:ns",
        "kill:False",
    ]
    assert ember.is_initialized()
    ember.shutdown()
    assert fake.calls[-1] == "shutdown"
    assert runtime_access.current_or_none() is None


def test_init_local_mode_installs_the_local_runtime():
    ember.init(local_mode=True, num_cpus=3, namespace="lm")
    try:
        rt = runtime_access.current_or_none()
        assert isinstance(rt, LocalModeRuntime)
        assert ember.cluster_resources()["CPU"] == 3.0
        assert ember.get_runtime_context().namespace == "lm"
    finally:
        ember.shutdown()
    assert runtime_access.current_or_none() is None
    assert not ember.is_initialized()


def test_local_mode_frees_an_object_with_its_last_ref():
    ember.init(local_mode=True)
    try:
        rt = runtime_access.current_or_none()
        assert isinstance(rt, LocalModeRuntime)
        ref = ember.put(list(range(1000)))
        outer = ember.put([ref])
        assert len(rt.store) == 2
        del ref
        assert len(rt.store) == 2  # the ref inside ``outer`` keeps it alive
        (inner,) = ember.get(outer)
        assert ember.get(inner)[-1] == 999
        del outer, inner
        assert len(rt.store) == 0
        kept = ember.put([ember.put("inner")])  # shutdown drops nested entries too
    finally:
        ember.shutdown()
    assert len(rt.store) == 0
    del kept


def test_api_package_has_no_import_cycle():
    graph = grimp.build_graph("ember")
    modules = {m for m in graph.modules if m.startswith("ember.api.")}
    for m in modules:
        for imported in graph.find_modules_directly_imported_by(m):
            if imported in modules and imported != m:
                assert not graph.chain_exists(imported, m), (
                    f"import cycle between {m} and {imported}"
                )
