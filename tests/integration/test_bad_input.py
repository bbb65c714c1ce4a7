"""Bad arguments raise typed errors at the call site and never poison the driver.

Each case once reached a daemon (which rejected the request and closed the
connection, so every later call of the driver failed) or ate memory before
failing. Here each must raise in the caller, naming the argument, and the very
next call of the same driver must work.
"""

from __future__ import annotations

import pytest

import ember
from ember.util import placement_group, remove_placement_group


@ember.remote
def add_one(x):
    return x + 1


@ember.remote
class Box:
    def get(self):
        return "box"


def test_init_checks_its_arguments_before_starting_anything():
    # No cluster is running here: every bad init() must fail before one starts.
    bad = [
        ({"runtime_env": {"env_vars": {"A": 1}}}, TypeError),
        ({"namespace": 5}, TypeError),
        ({"num_gpus": -1}, ValueError),
        ({"num_cpus": 1.5}, TypeError),
        ({"object_store_memory": -5}, ValueError),
        ({"resources": {"x": float("nan")}}, ValueError),
        ({"log_to_driver": "yes"}, TypeError),
    ]
    for kwargs, error in bad:
        with pytest.raises(error):
            ember.init(**kwargs)
        assert not ember.is_initialized()


@pytest.fixture(scope="module")
def cluster():
    ember.init(num_cpus=1)
    yield
    ember.shutdown()


def _actor():
    return Box.remote()


def _wait_on_new_group(timeout):
    pg = placement_group([{"CPU": 0.01}])
    try:
        pg.wait(timeout)
    finally:  # the group would hold CPU that the next task needs
        remove_placement_group(pg)


CASES = [
    # (id, call, error type, text the message must contain)
    (
        "task env_vars value not str",
        lambda: add_one.options(runtime_env={"env_vars": {"A": 1}}).remote(1),
        TypeError,
        "env_vars",
    ),
    (
        "task env_vars key not str",
        lambda: add_one.options(runtime_env={"env_vars": {1: "a"}}).remote(1),
        TypeError,
        "env_vars",
    ),
    (
        "task env_vars name with '='",
        lambda: add_one.options(runtime_env={"env_vars": {"A=B": "x"}}).remote(1),
        ValueError,
        "env_vars",
    ),
    (
        "task env_vars value with NUL",
        lambda: add_one.options(runtime_env={"env_vars": {"A": "x\0y"}}).remote(1),
        ValueError,
        "NUL",
    ),
    (
        "task env_vars value too long",
        lambda: add_one.options(
            runtime_env={"env_vars": {"A": "x" * (200 * 1024)}}
        ).remote(1),
        ValueError,
        "limit",
    ),
    (
        "actor env_vars value not str",
        lambda: Box.options(runtime_env={"env_vars": {"A": 1}}).remote(),
        TypeError,
        "env_vars",
    ),
    (
        "get_actor namespace not str",
        lambda: ember.get_actor("x", namespace=5),
        TypeError,
        "namespace",
    ),
    ("get_actor name not str", lambda: ember.get_actor(5), TypeError, "name"),
    (
        "get_actor name too long",
        lambda: ember.get_actor("x" * 5000),
        ValueError,
        "name",
    ),
    (
        "kill no_restart not bool",
        lambda: ember.kill(_actor(), no_restart="x"),
        TypeError,
        "no_restart",
    ),
    (
        "placement_group name not str",
        lambda: placement_group([{"CPU": 1}], name=5),
        TypeError,
        "name",
    ),
    (
        "placement_group bundle amount not a number",
        lambda: placement_group([{"CPU": "1"}]),
        ValueError,
        "CPU",
    ),
    (
        "placement_group bundle amount infinite",
        lambda: placement_group([{"CPU": float("inf")}]),
        ValueError,
        "finite",
    ),
    (
        "placement_group too many bundles",
        lambda: placement_group([{"CPU": 1}] * 20_000),
        ValueError,
        "bundles",
    ),
    (
        "num_returns too large",
        lambda: add_one.options(num_returns=10**7).remote(1),
        ValueError,
        "num_returns",
    ),
    (
        "actor method num_returns too large",
        lambda: _actor().get.options(num_returns=10**7).remote(),
        ValueError,
        "num_returns",
    ),
    (
        "num_cpus NaN",
        lambda: add_one.options(num_cpus=float("nan")).remote(1),
        ValueError,
        "num_cpus",
    ),
    (
        "custom resource too large",
        lambda: add_one.options(resources={"x": 1e30}).remote(1),
        ValueError,
        "limit",
    ),
    (
        "actor name too long",
        lambda: Box.options(name="x" * 5000).remote(),
        ValueError,
        "name",
    ),
    (
        "max_restarts beyond the wire's int range",
        lambda: Box.options(max_restarts=10**20).remote(),
        ValueError,
        "max_restarts",
    ),
    (
        "cancel force not bool",
        lambda: ember.cancel(add_one.remote(1), force="x"),
        TypeError,
        "force",
    ),
    (
        "wait timeout not a number",
        lambda: ember.wait([add_one.remote(1)], timeout="x"),
        TypeError,
        "timeout",
    ),
    (
        "wait fetch_local not bool",
        lambda: ember.wait([add_one.remote(1)], fetch_local="x"),
        TypeError,
        "fetch_local",
    ),
    (
        "get timeout NaN",
        lambda: ember.get(add_one.remote(1), timeout=float("nan")),
        ValueError,
        "timeout",
    ),
    (
        "placement group wait timeout not a number",
        lambda: _wait_on_new_group("x"),
        TypeError,
        "timeout_seconds",
    ),
    (
        "list_named_actors all_namespaces not bool",
        lambda: ember.util.list_named_actors(all_namespaces="x"),
        TypeError,
        "all_namespaces",
    ),
]


@pytest.mark.parametrize(
    ("call", "error", "text"),
    [pytest.param(c, e, t, id=i) for i, c, e, t in CASES],
)
def test_bad_argument_raises_at_call_site_and_driver_keeps_working(
    cluster, call, error, text
):
    with pytest.raises(error) as info:
        call()
    assert text in str(info.value)
    # The driver's connections are intact: the next call works.
    assert ember.get(add_one.remote(41), timeout=60) == 42
    assert ember.get(Box.remote().get.remote(), timeout=60) == "box"


def test_placement_groups_still_work_after_bad_input(cluster):
    with pytest.raises(TypeError):
        placement_group([{"CPU": 0.5}], name=5)
    pg = placement_group([{"CPU": 0.5}], name="fine")
    assert pg.wait(60)
    remove_placement_group(pg)
