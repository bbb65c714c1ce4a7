"""Reading cluster configs: Ray's keys, defaults, and clear errors."""

from __future__ import annotations

import pytest

from ember.autoscaler.config import ClusterConfigError, parse_config


def body(**extra):
    return {
        "cluster_name": "demo",
        "max_workers": 4,
        "idle_timeout_minutes": 2,
        "provider": {"type": "local"},
        "head_node_type": "head",
        "available_node_types": {
            "head": {"resources": {"CPU": 2}, "max_workers": 0},
            "worker": {"resources": {"CPU": 1, "custom": 1}, "min_workers": 1},
        },
        **extra,
    }


def test_ray_keys_are_read_with_ray_defaults():
    cfg = parse_config(body())
    w = cfg.worker_types["worker"]
    assert list(cfg.worker_types) == ["worker"]
    assert cfg.head.resources == {"CPU": 2.0}
    assert (w.min_workers, w.max_workers, w.idle_timeout_s) == (1, 4, 120.0)
    assert cfg.upscaling_speed == 1.0


def test_a_node_type_idle_timeout_s_overrides_the_clusters():
    raw = body()
    raw["available_node_types"]["worker"]["idle_timeout_s"] = 7
    assert parse_config(raw).worker_types["worker"].idle_timeout_s == 7.0


def test_rays_machine_setup_keys_are_accepted_and_ignored():
    cfg = parse_config(body(setup_commands=["pip install x"], auth={"ssh_user": "u"}))
    assert cfg.cluster_name == "demo"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"max_wrokers": 3}, "unknown cluster config key"),
        ({"provider": {"type": "aws"}}, "provider.type must be one of"),
        ({"head_node_type": "nope"}, "head_node_type 'nope'"),
        ({"max_workers": -1}, "max_workers must be a number >= 0"),
        ({"upscaling_speed": "fast"}, "upscaling_speed must be a number"),
        ({"available_node_types": {}}, "at least one node type"),
    ],
)
def test_bad_configs_name_the_key(change, message):
    with pytest.raises(ClusterConfigError, match=message):
        parse_config(body(**change))


def test_bad_node_types_name_the_type_and_key():
    raw = body()
    raw["available_node_types"]["worker"].update(min_workers=3, max_workers=2)
    with pytest.raises(ClusterConfigError, match=r"worker: min_workers \(3\) is more"):
        parse_config(raw)
    raw = body()
    raw["available_node_types"]["worker"]["resource"] = {"CPU": 1}
    with pytest.raises(ClusterConfigError, match="worker: unknown key"):
        parse_config(raw)
    raw = body()
    raw["available_node_types"]["worker"]["resources"] = {"CPU": float("nan")}
    with pytest.raises(ClusterConfigError, match=r"resources\.CPU must be a number"):
        parse_config(raw)
    raw = body()
    raw["available_node_types"]["bad name!"] = {"resources": {"CPU": 1}}
    with pytest.raises(ClusterConfigError, match="used as a node label"):
        parse_config(raw)
