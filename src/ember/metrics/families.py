"""Metric families whose every sample carries the common labels (``SessionName``, ``NodeAddress``).

Collectors build their samples through :class:`Families` at scrape time, so
no collector repeats the common labels or the shape of a histogram.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

#: one sample: its own label values (in the family's label order) and its value
Row = tuple[Sequence[str], float]


class Families:
    """Builds families labelled with ``common()`` (called once per family: cheap)."""

    def __init__(self, common: Callable[[], dict[str, str]]) -> None:
        self._common = common

    def _labels(self, own: Sequence[str]) -> tuple[list[str], list[str]]:
        common = self._common()
        return [*common, *own], list(common.values())

    def gauge(
        self, name: str, doc: str, rows: Iterable[Row], labels: Sequence[str] = ()
    ) -> Metric:
        keys, values = self._labels(labels)
        fam = GaugeMetricFamily(name, doc, labels=keys)
        for own, value in rows:
            fam.add_metric([*values, *own], value)
        return fam

    def counter(
        self, name: str, doc: str, rows: Iterable[Row], labels: Sequence[str] = ()
    ) -> Metric:
        keys, values = self._labels(labels)
        fam = CounterMetricFamily(name, doc, labels=keys)
        for own, value in rows:
            fam.add_metric([*values, *own], value)
        return fam

    def histogram(
        self,
        name: str,
        doc: str,
        bounds: Sequence[float],
        rows: Iterable[tuple[Sequence[str], Sequence[float], float]],
        labels: Sequence[str] = (),
    ) -> Metric:
        """``rows``: (label values, count per bucket incl. the +Inf one, sum)."""
        keys, values = self._labels(labels)
        fam = HistogramMetricFamily(name, doc, labels=keys)
        for own, counts, total in rows:
            fam.add_metric(
                [*values, *own], cumulative_buckets(bounds, counts), sum_value=total
            )
        return fam


def cumulative_buckets(
    bounds: Sequence[float], counts: Sequence[float]
) -> list[tuple[str, float]]:
    """Per-bucket counts (the last one past every bound) as Prometheus's ``le`` buckets."""
    out: list[tuple[str, float]] = []
    running = 0.0
    for bound, n in zip(bounds, counts, strict=False):
        running += n
        out.append((format_bound(bound), running))
    running += sum(counts[len(bounds) :])
    out.append(("+Inf", running))
    return out


def format_bound(bound: float) -> str:
    """A bucket bound as Prometheus writes it (``0.5``, ``10.0``)."""
    return repr(float(bound))
