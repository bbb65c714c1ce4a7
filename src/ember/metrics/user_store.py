"""A node's view of its processes' user metrics (exported by ``user_collector``).

Points reported by drivers and workers (``node.report_metrics``) are summed
into totals (counters, histogram buckets) or kept as the last value
(gauges) per series, and exported under ``ember_<name>`` as Ray exports
them under ``ray_<name>``.  A name that clashes with ember's own metrics,
or that another process gave another kind, is dropped with one warning.
The number of series is bounded.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

from ember.metrics import names
from ember.protocol.messages import MetricPoint

logger = logging.getLogger(__name__)

#: series a node keeps at most, over all its processes
MAX_SERIES = 50_000

_RESERVED = {
    n.removesuffix("_total")
    for n in (*names.NODE_METRICS, *names.GPU_METRICS, *names.CONTROL_METRICS)
}

Tags = tuple[tuple[str, str], ...]

_NOT_IN_LABEL = re.compile(r"[^a-zA-Z0-9_]")


def label_name(tag_key: str) -> str:
    """A tag key as a Prometheus label name (other characters become ``_``)."""
    name = _NOT_IN_LABEL.sub("_", tag_key) or "_"
    return "_" + name if name[0].isdigit() else name


class Series:
    __slots__ = ("buckets", "total", "value")

    def __init__(self) -> None:
        self.value = 0.0
        self.buckets: list[float] = []
        self.total = 0.0


class UserMetricStore:
    """Every user metric series reported to this node."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self._max = max_series
        #: exported name -> (kind, description, boundaries)
        self.defs: dict[str, tuple[str, str, tuple[float, ...]]] = {}
        self.series: dict[str, dict[Tags, Series]] = {}
        self._count = 0
        self._warned: set[str] = set()

    def _warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._warned:
            self._warned.add(key)
            logger.warning(message, *args)

    def add(self, points: Iterable[MetricPoint]) -> None:
        for p in points:
            name = names.user_metric_name(p.name)
            if name in _RESERVED:
                self._warn(
                    name,
                    "user metric %r clashes with ember's %s: dropped",
                    p.name,
                    name,
                )
                continue
            known = self.defs.setdefault(
                name, (p.kind, p.description, tuple(p.boundaries))
            )
            if known[0] != p.kind or (
                p.kind == "histogram" and known[2] != tuple(p.boundaries)
            ):
                self._warn(
                    name + p.kind,
                    "user metric %r was reported as a %s before; a %s of that name "
                    "(or other boundaries) is dropped",
                    p.name,
                    known[0],
                    p.kind,
                )
                continue
            per = self.series.setdefault(name, {})
            tags = tuple(
                sorted(
                    (label_name(k), v)
                    for k, v in p.tags.items()
                    if k not in names.COMMON_LABELS
                )
            )
            s = per.get(tags)
            if s is None:
                if self._count >= self._max:
                    self._warn(
                        "", "%d user metric series: new ones are dropped", self._max
                    )
                    continue
                s = per[tags] = Series()
                s.buckets = [0.0] * len(p.buckets)
                self._count += 1
            if p.kind == "gauge":
                s.value = p.value
            elif p.kind == "counter":
                s.value += p.value
            else:
                for i, n in enumerate(p.buckets[: len(s.buckets)]):
                    s.buckets[i] += n
                s.total += p.total
