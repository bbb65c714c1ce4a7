"""Exports a node's :class:`~ember.metrics.user_store.UserMetricStore` as Prometheus families.

Tags become labels (a series without one of its metric's tags has it empty);
a Counter ``x`` is ``ember_x_total``, a Histogram ``x`` has ``ember_x_bucket``,
``_sum`` and ``_count``, as Ray exports ``ray_x``.
"""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ember.metrics import names
from ember.metrics.families import Families
from ember.metrics.user_store import Tags, UserMetricStore


class UserMetricsCollector(Collector):
    """Exports a :class:`UserMetricStore` (tags become labels; missing ones are "")."""

    def __init__(self, fam: Families, store: UserMetricStore) -> None:
        self._fam = fam
        self._store = store

    def collect(self) -> Iterator[Metric]:
        st = self._store
        for name, (kind, doc, bounds) in sorted(st.defs.items()):
            per = st.series.get(name, {})
            keys = sorted({k for tags in per for k, _ in tags})
            doc = doc or f"user metric {name.removeprefix(names.PREFIX)}"

            def own(tags: Tags, keys: list[str] = keys) -> tuple[str, ...]:
                d = dict(tags)
                return tuple(d.get(k, "") for k in keys)

            if kind == "histogram":
                yield self._fam.histogram(
                    name,
                    doc,
                    bounds,
                    [(own(t), s.buckets, s.total) for t, s in per.items()],
                    keys,
                )
            elif kind == "counter":
                yield self._fam.counter(
                    name, doc, [(own(t), s.value) for t, s in per.items()], keys
                )
            else:
                yield self._fam.gauge(
                    name, doc, [(own(t), s.value) for t, s in per.items()], keys
                )
