"""``ember_grpc_server_req_process_time_ms{Method}``: this process's handler times as histograms.

The counts are kept by :mod:`ember.rpc.dispatch` in plain lists (one per
method: a count per bucket and a sum of seconds); this collector copies them
into histogram families, in milliseconds, when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ember.metrics import names
from ember.metrics.families import Families
from ember.rpc import dispatch

_BOUNDS_MS = tuple(round(b * 1000.0, 9) for b in dispatch.LATENCY_BOUNDS_S)


class RpcLatencyCollector(Collector):
    """Handler latency per method of every connection this process served."""

    def __init__(self, fam: Families) -> None:
        self._fam = fam

    def collect(self) -> Iterator[Metric]:
        rows = [
            ((method,), row[:-1], row[-1] * 1000.0)
            for method, row in sorted(dispatch.HANDLER_TIMES.items())
        ]
        yield self._fam.histogram(
            names.RPC_LATENCY,
            "Time from a request's arrival to its reply (or, for a notification, to "
            "its handler's end), per method, in milliseconds.",
            _BOUNDS_MS,
            rows,
            labels=("Method",),
        )
