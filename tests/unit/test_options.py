"""Tests for ``@remote`` / ``.options`` keyword validation."""

from __future__ import annotations

from typing import Any

import pytest

from ember.api.options import (
    ACTOR_OPTION_DEFAULTS,
    TASK_OPTION_DEFAULTS,
    resolve_num_returns,
    update_options,
    validate_actor_options,
    validate_task_options,
)


class NodeAffinitySchedulingStrategy:
    """Stand-in for ember.util.scheduling_strategies (only the name matters)."""


class PlacementGroup:
    """Stand-in for a placement group handle."""


VALID_TASK: list[dict[str, Any]] = [
    {},
    {"num_cpus": 0.5},
    {"num_cpus": 2, "num_gpus": 1},
    {"memory": 10**9},
    {"resources": {"custom": 1.5}},
    {"num_returns": 0},
    {"num_returns": 3},
    {"num_returns": "streaming"},
    {"num_returns": "dynamic"},
    {"max_retries": -1},
    {"retry_exceptions": True},
    {"retry_exceptions": [ValueError, KeyError]},
    {"scheduling_strategy": "SPREAD"},
    {"scheduling_strategy": "DEFAULT"},
    {"scheduling_strategy": NodeAffinitySchedulingStrategy()},
    {"placement_group": PlacementGroup(), "placement_group_bundle_index": 0},
    {"placement_group": None, "scheduling_strategy": "SPREAD"},
    {"runtime_env": {"env_vars": {"A": "1"}}},
    {"runtime_env": None},
    {"label_selector": {"region": "in(us, eu)", "example.com/gpu": "!a100"}},
    {"fallback_strategy": [{"label_selector": {"zone": "b"}}]},
    {"name": "n", "accelerator_type": "A100", "enable_task_events": False},
    {"_metadata": {"x": {}}, "_labels": {"a": "b"}, "max_calls": 3},
    {"_generator_backpressure_num_objects": -1},
]


@pytest.mark.parametrize("opts", VALID_TASK)
def test_valid_task_options(opts: dict[str, Any]) -> None:
    validate_task_options(opts, in_options=False)


VALID_ACTOR: list[dict[str, Any]] = [
    {},
    {"num_cpus": 1},
    {"max_restarts": -1, "max_task_retries": 5},
    {"max_concurrency": 10},
    {"max_pending_calls": 100},
    {"lifetime": "detached", "name": "a"},
    {"lifetime": "non_detached"},
    {"lifetime": None},
    {"name": "a", "get_if_exists": True},
    {"namespace": "ns"},
    {"concurrency_groups": {"io": 2}},
    {"allow_out_of_order_execution": True},
    {"enable_tensor_transport": True},
    {"scheduling_strategy": NodeAffinitySchedulingStrategy()},
]


@pytest.mark.parametrize("opts", VALID_ACTOR)
def test_valid_actor_options(opts: dict[str, Any]) -> None:
    validate_actor_options(opts, in_options=False)


@pytest.mark.parametrize(
    ("opts", "error", "words"),
    [
        ({"foo": 1}, ValueError, ["'foo'", "max_retries", "num_cpus"]),
        ({"max_restarts": 1}, ValueError, ["'max_restarts'", "actors"]),
        ({"lifetime": "detached"}, ValueError, ["'lifetime'"]),
        ({"num_cpus": -1}, ValueError, ["num_cpus", "negative"]),
        ({"num_cpus": "a"}, TypeError, ["num_cpus", "str"]),
        ({"num_gpus": "1"}, TypeError, ["num_gpus"]),
        ({"memory": -5}, ValueError, ["memory"]),
        ({"resources": {"CPU": 1}}, ValueError, ["num_cpus"]),
        ({"resources": {"GPU": 1}}, ValueError, ["num_gpus"]),
        ({"resources": {"memory": 1}}, ValueError, ["memory"]),
        ({"resources": {"x": "a"}}, TypeError, ["'x'"]),
        ({"resources": {"x": -1}}, ValueError, ["'x'"]),
        ({"resources": {"x": 0.00001}}, ValueError, ["0.0001"]),
        ({"resources": 3}, TypeError, ["resources"]),
        ({"num_returns": -1}, ValueError, ["num_returns"]),
        ({"num_returns": "x"}, ValueError, ["num_returns"]),
        ({"num_returns": 1.5}, TypeError, ["num_returns"]),
        ({"max_retries": -2}, ValueError, ["max_retries", "-1"]),
        ({"max_retries": 1.0}, TypeError, ["max_retries"]),
        ({"retry_exceptions": "a"}, TypeError, ["retry_exceptions"]),
        ({"retry_exceptions": [int]}, ValueError, ["retry_exceptions"]),
        ({"scheduling_strategy": "foo"}, ValueError, ["scheduling_strategy"]),
        ({"scheduling_strategy": 1}, TypeError, ["scheduling_strategy"]),
        ({"placement_group": 1}, TypeError, ["placement_group"]),
        (
            {"placement_group": PlacementGroup(), "scheduling_strategy": "SPREAD"},
            ValueError,
            ["scheduling_strategy"],
        ),
        ({"runtime_env": 1}, TypeError, ["runtime_env"]),
        ({"name": 1}, TypeError, ["name"]),
        ({"enable_task_events": None}, TypeError, ["enable_task_events"]),
        ({"object_store_memory": 1}, ValueError, ["object_store_memory"]),
        ({"label_selector": {"a b": "x"}}, ValueError, ["label_selector"]),
        ({"label_selector": {"a": 1}}, TypeError, ["label_selector"]),
        ({"fallback_strategy": [{"foo": 1}]}, ValueError, ["fallback_strategy"]),
        (
            {"_generator_backpressure_num_objects": 0},
            ValueError,
            ["_generator_backpressure"],
        ),
    ],
)
def test_invalid_task_options(
    opts: dict[str, Any], error: type, words: list[str]
) -> None:
    with pytest.raises(error) as info:
        validate_task_options(opts, in_options=True)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_unknown_keyword_lists_sorted_valid_ones() -> None:
    with pytest.raises(ValueError, match="foo") as info:
        validate_task_options({"foo": 1}, in_options=False)
    listed = str(info.value).split("Valid ones are ")[1]
    names = [n.strip(" '[].") for n in listed.split(",")]
    assert names == sorted(names)
    assert "num_returns" in names


def test_max_calls_only_in_decorator() -> None:
    validate_task_options({"max_calls": 1}, in_options=False)
    with pytest.raises(ValueError, match="max_calls"):
        validate_task_options({"max_calls": 1}, in_options=True)


def test_streaming_requires_generator() -> None:
    validate_task_options(
        {"num_returns": "streaming"}, in_options=False, is_generator=True
    )
    with pytest.raises(ValueError, match="generator"):
        validate_task_options(
            {"num_returns": "streaming"}, in_options=False, is_generator=False
        )


@pytest.mark.parametrize(
    ("opts", "error", "words"),
    [
        ({"num_returns": 2}, ValueError, ["'num_returns'", "@method"]),
        ({"max_retries": 2}, ValueError, ["'max_retries'"]),
        ({"max_calls": 2}, ValueError, ["'max_calls'"]),
        ({"max_restarts": -2}, ValueError, ["max_restarts"]),
        ({"max_task_retries": -2}, ValueError, ["max_task_retries"]),
        ({"max_concurrency": 1.5}, TypeError, ["max_concurrency"]),
        ({"max_concurrency": -1}, ValueError, ["max_concurrency"]),
        ({"get_if_exists": True}, ValueError, ["name", "get_if_exists"]),
        ({"get_if_exists": 1}, TypeError, ["get_if_exists"]),
        ({"lifetime": "forever"}, ValueError, ["lifetime", "detached"]),
        ({"lifetime": 1}, TypeError, ["lifetime"]),
        ({"name": ""}, ValueError, ["name"]),
        ({"name": "a", "namespace": ""}, ValueError, ["namespace"]),
        ({"num_cpus": -1}, ValueError, ["num_cpus"]),
        (
            {"allow_out_of_order_execution": 1},
            TypeError,
            ["allow_out_of_order_execution"],
        ),
        ({"concurrency_groups": {"io": 0}}, ValueError, ["concurrency_groups"]),
    ],
)
def test_invalid_actor_options(
    opts: dict[str, Any], error: type, words: list[str]
) -> None:
    with pytest.raises(error) as info:
        validate_actor_options(opts, in_options=False)
    assert all(w in str(info.value) for w in words), str(info.value)


def test_concurrency_groups_only_in_decorator() -> None:
    with pytest.raises(ValueError, match="concurrency_groups"):
        validate_actor_options({"concurrency_groups": {"io": 1}}, in_options=True)


def test_actor_object_store_memory_warns() -> None:
    with pytest.warns(DeprecationWarning, match="object_store_memory"):
        validate_actor_options({"object_store_memory": 1}, in_options=True)


def test_defaults() -> None:
    assert TASK_OPTION_DEFAULTS["num_cpus"] == 1
    assert TASK_OPTION_DEFAULTS["max_retries"] == 3
    assert TASK_OPTION_DEFAULTS["retry_exceptions"] is False
    assert TASK_OPTION_DEFAULTS["num_returns"] is None
    assert ACTOR_OPTION_DEFAULTS["num_cpus"] is None
    assert ACTOR_OPTION_DEFAULTS["max_restarts"] == 0
    assert ACTOR_OPTION_DEFAULTS["max_task_retries"] == 0
    assert ACTOR_OPTION_DEFAULTS["max_pending_calls"] == -1
    assert ACTOR_OPTION_DEFAULTS["get_if_exists"] is False
    for key in ("max_concurrency", "lifetime", "name", "namespace"):
        assert ACTOR_OPTION_DEFAULTS[key] is None
    assert "num_returns" not in ACTOR_OPTION_DEFAULTS
    assert "max_restarts" not in TASK_OPTION_DEFAULTS


def test_helpers() -> None:
    assert resolve_num_returns(None, is_generator=False) == 1
    assert resolve_num_returns(None, is_generator=True) == "streaming"
    assert resolve_num_returns(2, is_generator=False) == 2
    base = {"num_cpus": 1}
    assert update_options(base, {"num_cpus": 2, "name": "x"}) == {
        "num_cpus": 2,
        "name": "x",
    }
    assert base == {"num_cpus": 1}
