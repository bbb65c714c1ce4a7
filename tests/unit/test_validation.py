"""Limits on unbounded inputs and the argument checks of api/validation.py (no cluster)."""

from __future__ import annotations

import pytest

from ember.api import validation as v
from ember.api.options import (
    validate_actor_options,
    validate_method_options,
    validate_task_options,
)


def test_num_returns_is_bounded():
    validate_task_options({"num_returns": v.MAX_NUM_RETURNS}, in_options=True)
    with pytest.raises(ValueError, match=r"num_returns.*limit"):
        validate_task_options({"num_returns": v.MAX_NUM_RETURNS + 1}, in_options=True)
    with pytest.raises(ValueError, match="num_returns"):
        validate_method_options({"num_returns": 10**7}, "actor methods")


@pytest.mark.parametrize("amount", [float("nan"), float("inf"), 1e30])
def test_resource_amounts_are_finite_and_bounded(amount):
    with pytest.raises(ValueError, match="num_cpus"):
        validate_task_options({"num_cpus": amount}, in_options=True)
    with pytest.raises(ValueError, match="'x'"):
        validate_actor_options({"resources": {"x": amount}}, in_options=True)


def test_names_are_bounded():
    long = "n" * (v.MAX_NAME_LENGTH + 1)
    validate_actor_options({"name": "n" * v.MAX_NAME_LENGTH}, in_options=True)
    with pytest.raises(ValueError, match=r"name.*limit"):
        validate_actor_options({"name": long}, in_options=True)
    with pytest.raises(ValueError, match=r"namespace.*limit"):
        validate_actor_options({"namespace": long}, in_options=True)
    with pytest.raises(ValueError, match="Resource names"):
        validate_task_options({"resources": {long: 1}}, in_options=True)


def test_counts_fit_the_wire():
    validate_actor_options({"max_restarts": -1}, in_options=True)
    with pytest.raises(ValueError, match=r"max_restarts.*limit"):
        validate_actor_options({"max_restarts": 10**20}, in_options=True)
    with pytest.raises(ValueError, match=r"max_retries.*limit"):
        validate_task_options({"max_retries": 2**31}, in_options=True)
    with pytest.raises(ValueError, match=r"max_concurrency.*limit"):
        validate_actor_options({"max_concurrency": 10**9}, in_options=True)


@pytest.mark.parametrize(
    ("env", "error", "text"),
    [
        ({"A": 1}, TypeError, "but the value 1 is of type"),
        ({1: "a"}, TypeError, "but the key 1 is of type"),
        (["A"], TypeError, "must be of type Dict[str, str]"),
        ({"": "a"}, ValueError, "invalid variable name"),
        ({"A=B": "a"}, ValueError, "invalid variable name"),
        ({"A": "a\0b"}, ValueError, "NUL"),
        ({"A": "x" * v.MAX_ENV_VAR_BYTES}, ValueError, "one exec string"),
        ({f"K{i}": "x" * 100_000 for i in range(12)}, ValueError, "holds"),
    ],
)
def test_runtime_env_vars_are_str_to_str_and_exec_safe(env, error, text):
    with pytest.raises(error) as info:
        validate_task_options({"runtime_env": {"env_vars": env}}, in_options=True)
    assert text in str(info.value)
    assert "env_vars" in str(info.value)


def test_method_options_are_checked_like_task_options():
    validate_method_options({"num_returns": 2, "max_task_retries": -1}, "x")
    with pytest.raises(ValueError, match="Invalid option keyword 'num_cpus'"):
        validate_method_options({"num_cpus": 1}, "actor methods")
    with pytest.raises(TypeError, match="name"):
        validate_method_options({"name": 5}, "actor methods")


def test_scheduling_strategy_fields_are_typed():
    class PlacementGroupSchedulingStrategy:
        placement_group = None
        placement_group_bundle_index = "0"

    with pytest.raises(TypeError, match="placement_group_bundle_index"):
        validate_task_options(
            {"scheduling_strategy": PlacementGroupSchedulingStrategy()},
            in_options=True,
        )

    class NodeAffinitySchedulingStrategy:
        node_id = "ab" * 16
        soft = "yes"

    with pytest.raises(TypeError, match="soft"):
        validate_task_options(
            {"scheduling_strategy": NodeAffinitySchedulingStrategy()},
            in_options=True,
        )


def test_small_checkers():
    with pytest.raises(TypeError, match="'flag' must be a bool"):
        v.check_bool("'flag'", "x")
    with pytest.raises(ValueError, match="must be >= 0"):
        v.check_timeout("'t'", float("nan"))
    with pytest.raises(ValueError):
        v.check_timeout("'t'", "x", ValueError)
    v.check_timeout("'t'", None)
    v.check_name("'n'", None, optional=True)
    with pytest.raises(TypeError, match="None or a str"):
        v.check_name("'n'", 5, optional=True)
