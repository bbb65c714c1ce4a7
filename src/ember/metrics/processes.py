"""Per-component process figures (``ember_component_*``): RSS and CPU by Component.

The owner of the collector says which pids belong to which component
(``control``, ``node``, ``worker``, ``driver``, ...) when asked; CPU percent
needs the same ``psutil.Process`` across scrapes, so they are kept by pid
and dropped when the pid leaves.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psutil
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ember.metrics import names
from ember.metrics.families import Families


class ComponentCollector(Collector):
    """Sums RSS and CPU over each component's processes."""

    def __init__(
        self, fam: Families, components: Callable[[], dict[str, list[int]]]
    ) -> None:
        self._fam = fam
        self._components = components
        self._procs: dict[int, psutil.Process] = {}

    def _process(self, pid: int) -> psutil.Process | None:
        p = self._procs.get(pid)
        if p is None:
            try:
                p = self._procs[pid] = psutil.Process(pid)
                p.cpu_percent(None)  # starts its interval: 0 this time
            except psutil.Error:
                return None
        return p

    def collect(self) -> Iterator[Metric]:
        groups = self._components()
        seen: set[int] = set()
        rss: dict[str, float] = {}
        cpu: dict[str, float] = {}
        count: dict[str, int] = {}
        for component, pids in sorted(groups.items()):
            rss[component] = cpu[component] = 0.0
            count[component] = 0
            for pid in pids:
                p = self._process(pid)
                if p is None:
                    continue
                try:
                    with p.oneshot():
                        r = p.memory_info().rss
                        c = p.cpu_percent(None)
                except psutil.Error:
                    continue
                seen.add(pid)
                rss[component] += r
                cpu[component] += c
                count[component] += 1
        for pid in set(self._procs) - seen:
            del self._procs[pid]
        labels = ("Component",)
        yield self._fam.gauge(
            names.COMPONENT_RSS_MB,
            "Resident memory of the component's processes, MiB.",
            [((k,), v / 2**20) for k, v in rss.items()],
            labels,
        )
        yield self._fam.gauge(
            names.COMPONENT_RSS_BYTES,
            "Resident memory of the component's processes, bytes.",
            [((k,), v) for k, v in rss.items()],
            labels,
        )
        yield self._fam.gauge(
            names.COMPONENT_CPU_PERCENTAGE,
            "CPU use of the component's processes in percent of one core (since the "
            "previous scrape; above 100 when they use more than one).",
            [((k,), v) for k, v in cpu.items()],
            labels,
        )
        yield self._fam.gauge(
            names.COMPONENT_COUNT,
            "Live processes of the component.",
            [((k,), v) for k, v in count.items()],
            labels,
        )
