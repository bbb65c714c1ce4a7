"""``ray.autoscaler.sdk.request_resources``: Ray's signature and input checks."""

from __future__ import annotations

import inspect

import pytest

import ember as ray
from ember.autoscaler.sdk import request_resources


def test_signature_is_rays():
    params = inspect.signature(request_resources).parameters
    assert list(params) == ["num_cpus", "bundles", "bundle_label_selectors"]
    assert all(p.default is None for p in params.values())


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"num_cpus": 1.5}, TypeError, "num_cpus should be of type int"),
        ({"bundles": {"CPU": 1}}, TypeError, "bundles should be of type List"),
        ({"bundles": [["CPU"]]}, TypeError, "each bundle should be a Dict"),
        ({"bundles": [{1: 1}]}, TypeError, "each bundle key should be str"),
        (
            {"bundles": [{"CPU": "1"}]},
            TypeError,
            "each bundle value should be a number",
        ),
        (
            {"bundles": [{"CPU": True}]},
            TypeError,
            "each bundle value should be a number",
        ),
        (
            {"bundle_label_selectors": [{}]},
            ValueError,
            "`bundles` must be provided",
        ),
    ],
)
def test_bad_requests_raise_before_anything_is_sent(kwargs, error, message):
    with pytest.raises(error, match=message):
        request_resources(**kwargs)


def test_a_request_needs_a_connected_driver():
    if ray.is_initialized():
        ray.shutdown()
    with pytest.raises(RuntimeError, match="not initialized"):
        request_resources(num_cpus=1)


def test_a_request_is_accepted_without_an_autoscaler(ray_start_regular):
    # stored for an autoscaler that may run; nothing else happens
    request_resources(num_cpus=1)
    request_resources(bundles=[{"CPU": 1}, {"CPU": 1}])
    request_resources(num_cpus=0)
