"""Options ember accepts but does not act on yet warn, naming the option."""

from __future__ import annotations

import warnings

import pytest

import ember
from ember.api import ignored_options


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(ignored_options, "_warned", set())


@pytest.fixture
def local():
    yield
    ember.shutdown()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"_temp_dir": "/tmp/elsewhere"}, "_temp_dir"),
    ],
)
def test_init_option_without_effect_warns(local, kwargs, name):
    with pytest.warns(UserWarning, match=f"does not act on init\\({name}="):
        ember.init(local_mode=True, **kwargs)


def test_defaults_do_not_warn(local):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ember.init(local_mode=True, runtime_env={"env_vars": {"A": "1"}})


def test_runtime_env_field_without_effect_warns_once(local):
    @ember.remote
    def f():
        return 1

    with pytest.warns(UserWarning, match=r"runtime_env\['conda'\]"):
        f.options(runtime_env={"conda": "base"})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        f.options(runtime_env={"conda": "base"})  # once per process
    # local mode runs tasks in the driver: nothing of the env is set up
    with pytest.warns(UserWarning, match=r"local_mode"):
        ember.init(local_mode=True, runtime_env={"working_dir": "."})


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"bundle_label_selector": [{"region": "us"}]}, "bundle_label_selector"),
        ({"_soft_target_node_id": "ab" * 16}, "_soft_target_node_id"),
    ],
)
def test_placement_group_option_without_effect_warns(local, kwargs, name):
    ember.init(local_mode=True)
    with pytest.warns(UserWarning, match=f"does not act on placement_group\\({name}="):
        ember.util.placement_group([{"CPU": 1}], strategy="STRICT_PACK", **kwargs)
