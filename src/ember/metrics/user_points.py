"""A process's user metrics, aggregated in memory until they are reported to its node.

``ember.util.metrics`` records into the process's one :class:`PointBuffer`
from any thread (a lock, a dict update); every second the core worker's loop
drains it into :class:`~ember.protocol.messages.MetricPoint` s: counters and
histograms as what was added since the last drain, gauges as their last
value (only those set since).  The number of series is bounded; past it new
series are dropped with one warning.
"""

from __future__ import annotations

import bisect
import logging
import threading
from collections.abc import Sequence

from ember.protocol.messages import MetricPoint

logger = logging.getLogger(__name__)

#: series one process keeps at most (name + tag values)
MAX_SERIES = 10_000

Tags = tuple[tuple[str, str], ...]


class PointBuffer:
    """Thread-safe aggregation of one process's records."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._lock = threading.Lock()
        self._max = max_series
        #: name -> (kind, description, boundaries)
        self._defs: dict[str, tuple[str, str, tuple[float, ...]]] = {}
        self._counters: dict[tuple[str, Tags], float] = {}
        self._gauges: dict[tuple[str, Tags], float] = {}
        self._hists: dict[tuple[str, Tags], list[float]] = {}
        self._series: set[tuple[str, Tags]] = set()
        self._warned = False

    def define(
        self, name: str, kind: str, description: str, boundaries: Sequence[float] = ()
    ) -> None:
        with self._lock:
            self._defs.setdefault(name, (kind, description, tuple(boundaries)))

    def _admit(self, key: tuple[str, Tags]) -> bool:
        if key in self._series:
            return True
        if len(self._series) >= self._max:
            if not self._warned:
                self._warned = True
                logger.warning(
                    "this process has %d metric series (name and tag values); new "
                    "ones are dropped (%s)",
                    self._max,
                    key[0],
                )
            return False
        self._series.add(key)
        return True

    def inc(self, name: str, tags: Tags, value: float) -> None:
        key = (name, tags)
        with self._lock:
            if self._admit(key):
                self._counters[key] = self._counters.get(key, 0.0) + value

    def set(self, name: str, tags: Tags, value: float) -> None:
        key = (name, tags)
        with self._lock:
            if self._admit(key):
                self._gauges[key] = value

    def observe(self, name: str, tags: Tags, value: float) -> None:
        key = (name, tags)
        with self._lock:
            if not self._admit(key):
                return
            bounds = self._defs[name][2]
            row = self._hists.get(key)
            if row is None:
                row = self._hists[key] = [0.0] * (len(bounds) + 2)
            row[bisect.bisect_left(bounds, value)] += 1
            row[-1] += value

    def drain(self) -> list[MetricPoint]:
        """What changed since the last drain, as points (and forget it)."""
        with self._lock:
            counters, self._counters = self._counters, {}
            gauges, self._gauges = self._gauges, {}
            hists, self._hists = self._hists, {}
            defs = dict(self._defs)
        out = []
        for (name, tags), value in counters.items():
            out.append(
                MetricPoint(
                    name=name,
                    kind="counter",
                    description=defs[name][1],
                    tags=dict(tags),
                    value=value,
                )
            )
        for (name, tags), value in gauges.items():
            out.append(
                MetricPoint(
                    name=name,
                    kind="gauge",
                    description=defs[name][1],
                    tags=dict(tags),
                    value=value,
                )
            )
        for (name, tags), row in hists.items():
            out.append(
                MetricPoint(
                    name=name,
                    kind="histogram",
                    description=defs[name][1],
                    tags=dict(tags),
                    boundaries=list(defs[name][2]),
                    buckets=row[:-1],
                    total=row[-1],
                )
            )
        return out

    def put_back(self, points: list[MetricPoint]) -> None:
        """Points that could not be reported: merge them into the next drain."""
        for p in points:
            tags = tuple(sorted(p.tags.items()))
            key = (p.name, tags)
            with self._lock:
                if p.kind == "counter":
                    self._counters[key] = self._counters.get(key, 0.0) + p.value
                elif p.kind == "gauge":
                    self._gauges.setdefault(key, p.value)
                else:
                    row = self._hists.setdefault(key, [0.0] * (len(p.buckets) + 1))
                    for i, n in enumerate(p.buckets):
                        row[i] += n
                    row[-1] += p.total
