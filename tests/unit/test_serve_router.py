"""The pure parts of ember.serve: replica choice, the autoscaling decision, options, routes."""

from __future__ import annotations

import random

import pytest

from ember.serve._autoscale import ScaleDecider, desired_replicas
from ember.serve._choice import ReplicaChooser
from ember.serve.config import AutoscalingConfig, DeploymentConfig, HTTPOptions
from ember.serve.exceptions import ServeConfigError
from ember.serve.proxy import match_route


def test_chooser_prefers_the_less_loaded_of_two_and_respects_the_limit():
    c = ReplicaChooser(rng=random.Random(0))
    c.set_replicas(["a", "b"], max_ongoing=2)
    picks = [c.choose() for _ in range(4)]
    assert sorted(picks) == ["a", "a", "b", "b"]  # never 2 ahead of the other
    assert c.choose() is None  # both at max_ongoing_requests
    c.done("b")
    assert c.choose() == "b"
    assert c.total_ongoing() == 4


def test_chooser_keeps_counts_of_replicas_that_stay():
    c = ReplicaChooser()
    c.set_replicas(["a"], max_ongoing=5)
    c.choose()
    c.set_replicas(["a", "b"], max_ongoing=5)
    assert c.ongoing == {"a": 1, "b": 0}
    c.remove("a")
    assert c.choose() == "b"


def test_chooser_prefers_replicas_holding_the_model_while_they_have_room():
    c = ReplicaChooser(rng=random.Random(2))
    c.set_replicas(["a", "b", "c"], max_ongoing=2)
    assert [c.choose(prefer=["b"]) for _ in range(2)] == ["b", "b"]
    assert c.choose(prefer=["b"]) in ("a", "c")  # b is full: any other


def test_chooser_spreads_load_over_many_replicas():
    c = ReplicaChooser(rng=random.Random(1))
    c.set_replicas([str(i) for i in range(8)], max_ongoing=100)
    for _ in range(80):
        c.choose()
    assert max(c.ongoing.values()) - min(c.ongoing.values()) <= 2


def cfg(**kw) -> AutoscalingConfig:
    base = {"min_replicas": 1, "max_replicas": 10, "target_ongoing_requests": 2}
    base.update(kw)
    return AutoscalingConfig(**base)


def test_desired_replicas_follows_total_over_target_within_bounds():
    assert desired_replicas(cfg(), 2, 8) == 4
    assert desired_replicas(cfg(), 4, 2) == 1
    assert desired_replicas(cfg(), 4, 100) == 10
    assert desired_replicas(cfg(min_replicas=0), 3, 0) == 0
    assert desired_replicas(cfg(min_replicas=0), 0, 1) == 1  # a queued request wakes it
    assert desired_replicas(cfg(smoothing_factor=0.5), 2, 8) == 3


def test_decider_waits_the_upscale_and_downscale_delays():
    d = ScaleDecider(cfg(upscale_delay_s=1, downscale_delay_s=5, look_back_period_s=0))
    d.record(0.0, 8)
    assert d.decide(0.0, 2) == 2
    d.record(0.5, 8)
    assert d.decide(0.5, 2) == 2
    d.record(1.0, 8)
    assert d.decide(1.0, 2) == 4
    d.record(2.0, 0)
    assert d.decide(2.0, 4) == 4
    d.record(6.0, 8)  # load came back before the delay: the clock restarts
    assert d.decide(6.0, 4) == 4
    d.record(7.0, 0)
    assert d.decide(7.0, 4) == 4
    d.record(12.0, 0)
    assert d.decide(12.0, 4) == 1


def test_decider_averages_over_the_look_back_window():
    d = ScaleDecider(cfg(upscale_delay_s=0, look_back_period_s=10))
    for t, v in [(0, 0), (1, 0), (2, 12)]:
        d.record(float(t), v)
    assert d.average() == 4
    assert d.decide(2.0, 1) == 2


@pytest.mark.parametrize(
    "kwargs",
    [
        {"num_replicas": -1},
        {"max_ongoing_requests": 0},
        {"max_queued_requests": 0},
        {"ray_actor_options": {"max_restarts": 3}},
        {"autoscaling_config": {"min_replicas": 3, "max_replicas": 2}},
        {"autoscaling_config": {"target": 1}},
        {"health_check_period_s": -1},
    ],
)
def test_bad_options_are_typed_errors(kwargs):
    with pytest.raises(ServeConfigError):
        DeploymentConfig(**kwargs)


def test_num_replicas_auto_and_defaults():
    c = DeploymentConfig(num_replicas="auto")
    assert c.autoscaling_config is not None
    assert (c.autoscaling_config.min_replicas, c.autoscaling_config.max_replicas) == (
        1,
        100,
    )
    d = DeploymentConfig()
    assert (d.max_ongoing_requests, d.ray_actor_options) == (5, {"num_cpus": 1})
    assert (
        DeploymentConfig(
            autoscaling_config={"initial_replicas": 3, "max_replicas": 4}
        ).initial_target()
        == 3
    )
    with pytest.raises(ServeConfigError):
        HTTPOptions.coerce({"port": 70000})
    assert HTTPOptions.coerce(None).host == "127.0.0.1"


def test_options_ember_does_not_build_are_refused_not_ignored():
    from ember import serve

    @serve.deployment
    class D:
        pass

    with pytest.raises(ServeConfigError, match="placement_group_bundles"):
        D.options(placement_group_bundles=[{"CPU": 1}])
    with pytest.raises(ServeConfigError, match="unknown"):
        D.options(num_replica=2)
    with pytest.warns(UserWarning, match="logging_config"):
        D.options(logging_config={"log_level": "DEBUG"})
    assert DeploymentConfig(num_replicas=4).start_failure_limit() == 12
    assert DeploymentConfig(num_replicas=1).start_failure_limit() == 3


def test_routes_match_the_longest_prefix():
    routes = {"/": 0, "/api": 1, "/api/v2": 2}
    assert match_route(routes, "/api/v2/x") == "/api/v2"
    assert match_route(routes, "/api/v22") == "/api"
    assert match_route(routes, "/apix") == "/"
    assert match_route({"/a": 0}, "/b") is None
