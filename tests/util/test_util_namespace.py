"""The ember.util namespace: eager names, lazy submodules, forwarded names."""

from __future__ import annotations

import importlib.util
import types

import pytest

import ember as ray
import ember.util


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2)
    yield
    ray.shutdown()


@ray.remote(num_cpus=0)
class Named:
    def ping(self):
        return "pong"


def test_lazy_submodules():
    assert ember.util.queue.Queue.__name__ == "Queue"
    assert ember.util.multiprocessing.Pool.__name__ == "Pool"
    assert "queue" in dir(ember.util)


def test_unknown_attribute_raises_attribute_error():
    with pytest.raises(AttributeError, match="no attribute"):
        _ = ember.util.does_not_exist


def test_forwarded_names_resolve_or_fail_clearly():
    if importlib.util.find_spec("ember.util.placement_group") is None:
        with pytest.raises(AttributeError, match="placement_group"):
            _ = ember.util.placement_group
    else:
        import ember.util.placement_group as _module  # noqa: F401

        # Importing the submodule must not hide the function of the same name.
        assert callable(ember.util.placement_group)
        assert not isinstance(ember.util.placement_group, types.ModuleType)


def test_list_named_actors(cluster):
    actor = Named.options(name="util-ns-actor").remote()
    assert ray.get(actor.ping.remote()) == "pong"
    assert "util-ns-actor" in ember.util.list_named_actors()
    everywhere = ember.util.list_named_actors(all_namespaces=True)
    assert any(entry["name"] == "util-ns-actor" for entry in everywhere)
    assert all(set(entry) == {"name", "namespace"} for entry in everywhere)


def test_get_node_ip_address(cluster):
    address = ember.util.get_node_ip_address()
    assert isinstance(address, str)
    assert address
