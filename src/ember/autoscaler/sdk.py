"""``ember.autoscaler.sdk.request_resources``: ask the autoscaler for room (Ray's API).

The request replaces the previous one and stays until the next call: the
bundles go to the control service's KV store (namespace ``autoscaler``, key
``resource_request``), which the autoscaler reads every tick and packs into
the cluster's total resources, adding nodes for what does not fit (not
bound by ``upscaling_speed``). ``request_resources(num_cpus=0)`` or
``request_resources(bundles=[])`` withdraws it. Without an autoscaler the
request is stored and nothing happens.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

from ember.api import runtime_access
from ember.autoscaler.config import KV_NAMESPACE, REQUEST_KEY
from ember.protocol.messages import KvPutRequest

__all__ = ["request_resources"]

#: the largest request stored (one entry per bundle)
MAX_BUNDLES = 100_000


def _check_bundles(bundles: Any) -> list[dict[str, float]]:
    if not isinstance(bundles, list):
        raise TypeError("bundles should be of type List")
    out = []
    for bundle in bundles:
        if not isinstance(bundle, dict):
            raise TypeError("each bundle should be a Dict.")
        for key, value in bundle.items():
            if not isinstance(key, str):
                raise TypeError("each bundle key should be str.")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError("each bundle value should be a number (int or float).")
            if not value >= 0 or value == float("inf"):
                raise ValueError(
                    f"bundle amount {key!r} = {value!r} must be a finite number >= 0"
                )
        out.append({k: float(v) for k, v in bundle.items()})
    return out


def request_resources(
    num_cpus: int | None = None,
    bundles: list[dict[str, float]] | None = None,
    bundle_label_selectors: list[dict[str, str]] | None = None,
) -> None:
    """Have the autoscaler scale the cluster so these resources fit, at once.

    Args:
        num_cpus: make the cluster's total hold this many 1-CPU bundles.
        bundles: resource shapes the cluster's total must hold (e.g.
            ``[{"GPU": 1, "CPU": 4}]``), beside the ``num_cpus`` ones.
        bundle_label_selectors: one label selector per bundle, as Ray's; checked,
            not applied yet (the autoscaler ignores node labels).

    The request replaces the previous one and stays until the next call;
    it counts against the cluster's totals, not its free resources (what
    runs now is not added to it).
    """
    if num_cpus is not None and (
        not isinstance(num_cpus, int) or isinstance(num_cpus, bool)
    ):
        raise TypeError("num_cpus should be of type int.")
    if num_cpus is not None and num_cpus < 0:
        raise ValueError(f"num_cpus must be >= 0, not {num_cpus}")
    shapes = _check_bundles(bundles) if bundles is not None else []
    if bundle_label_selectors is not None:
        if bundles is None:
            raise ValueError(
                "`bundles` must be provided when `bundle_label_selectors` is specified."
            )
        if len(bundle_label_selectors) != len(bundles):
            raise ValueError(
                "`bundle_label_selector` must be a list with length equal to the "
                "number of bundles."
            )
        for sel in bundle_label_selectors:
            if not isinstance(sel, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in sel.items()
            ):
                raise ValueError("each bundle label selector maps str to str")
        if any(bundle_label_selectors):
            warnings.warn(
                "request_resources(bundle_label_selectors=...) is checked but not "
                "applied yet: the autoscaler ignores node labels",
                stacklevel=2,
            )
    request = [{"CPU": 1.0}] * (num_cpus or 0) + shapes
    if len(request) > MAX_BUNDLES:
        raise ValueError(
            f"request_resources asks for {len(request)} bundles; at most {MAX_BUNDLES}"
        )
    rt = runtime_access.current_or_none()
    if rt is None:
        raise RuntimeError("Ray is not initialized yet: call ember.init() first")
    cw = getattr(rt, "cw", None)
    if cw is None:
        return  # local mode: there is no cluster to scale
    value = json.dumps({"bundles": request}).encode()
    cw.run(
        cw.control.call(
            "control.kv_put",
            KvPutRequest(namespace=KV_NAMESPACE, key=REQUEST_KEY, value=value),
        )
    )
