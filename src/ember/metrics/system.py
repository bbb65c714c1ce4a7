"""The machine's figures (CPU, memory, disk, network, GPUs) from psutil, at scrape time.

Rates (network and disk speeds) are the change since the previous scrape
over the time between them, as Ray computes them; the first scrape reports 0.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterator
from typing import Any

import psutil
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ember.metrics import names
from ember.metrics.families import Families

logger = logging.getLogger(__name__)


class _Rate:
    """Bytes per second of a growing counter, between two readings."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._last: tuple[float, float] | None = None

    def update(self, value: float) -> float:
        now = self._clock()
        last, self._last = self._last, (now, value)
        if last is None or now <= last[0]:
            return 0.0
        return max(value - last[1], 0.0) / (now - last[0])


class NodeSystemCollector(Collector):
    """``ember_node_*``: CPU, memory, disk (of ``disk_path``'s file system), network, GPUs."""

    def __init__(
        self,
        fam: Families,
        node_ip: str,
        is_head: bool,
        disk_path: str,
        gpus: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fam = fam
        self._own = (node_ip, "1" if is_head else "0")
        self._disk_path = disk_path
        self._gpus = gpus
        self._sent, self._recv = _Rate(clock), _Rate(clock)
        self._read, self._write = _Rate(clock), _Rate(clock)
        psutil.cpu_percent(None)  # the first reading only starts the interval
        self._nvml: Any = _nvml() if gpus else None

    def _g(self, name: str, doc: str, value: float) -> Metric:
        return self._fam.gauge(name, doc, [(self._own, value)], ("ip", "IsHeadNode"))

    def collect(self) -> Iterator[Metric]:
        g = self._g
        yield g(
            names.NODE_CPU_UTILIZATION,
            "CPU use of the node in percent (since the previous scrape).",
            psutil.cpu_percent(None),
        )
        yield g(
            names.NODE_CPU_COUNT, "Logical CPUs of the node.", psutil.cpu_count() or 0
        )
        mem = psutil.virtual_memory()
        yield g(names.NODE_MEM_USED, "Memory in use, bytes.", mem.total - mem.available)
        yield g(names.NODE_MEM_AVAILABLE, "Memory available, bytes.", mem.available)
        yield g(names.NODE_MEM_TOTAL, "Memory of the node, bytes.", mem.total)
        disk = psutil.disk_usage(self._disk_path)
        yield g(
            names.NODE_DISK_USAGE,
            "Bytes used on the file system of the session folder.",
            disk.used,
        )
        yield g(names.NODE_DISK_FREE, "Bytes free on that file system.", disk.free)
        yield g(
            names.NODE_DISK_UTILIZATION,
            "Use of that file system in percent.",
            disk.percent,
        )
        net = psutil.net_io_counters()
        sent, recv = (net.bytes_sent, net.bytes_recv) if net else (0, 0)
        yield g(names.NODE_NETWORK_SENT, "Bytes sent on every interface.", sent)
        yield g(names.NODE_NETWORK_RECEIVED, "Bytes received on every interface.", recv)
        yield g(
            names.NODE_NETWORK_SEND_SPEED,
            "Bytes sent per second.",
            self._sent.update(sent),
        )
        yield g(
            names.NODE_NETWORK_RECEIVE_SPEED,
            "Bytes received per second.",
            self._recv.update(recv),
        )
        io = psutil.disk_io_counters()
        read, written = (io.read_bytes, io.write_bytes) if io else (0, 0)
        yield g(names.NODE_DISK_IO_READ, "Bytes read from disks.", read)
        yield g(names.NODE_DISK_IO_WRITE, "Bytes written to disks.", written)
        yield g(
            names.NODE_DISK_IO_READ_SPEED,
            "Bytes read from disks per second.",
            self._read.update(read),
        )
        yield g(
            names.NODE_DISK_IO_WRITE_SPEED,
            "Bytes written to disks per second.",
            self._write.update(written),
        )
        if self._gpus:
            yield from self._gpu_families()

    def _gpu_families(self) -> Iterator[Metric]:
        rows = _gpu_rows(self._nvml) if self._nvml is not None else []
        labels = ("ip", "IsHeadNode", "GpuIndex", "GpuDeviceName")
        per = [((*self._own, str(i), n), v) for i, n, v in rows]
        yield self._fam.gauge(
            names.NODE_GPUS_AVAILABLE,
            "GPUs of the node.",
            [(self._own, self._gpus)],
            ("ip", "IsHeadNode"),
        )
        yield self._fam.gauge(
            names.NODE_GPUS_UTILIZATION,
            "GPU use in percent.",
            [(r[0], r[1]["util"]) for r in per],
            labels,
        )
        yield self._fam.gauge(
            names.NODE_GRAM_USED,
            "GPU memory in use, bytes.",
            [(r[0], r[1]["used"]) for r in per],
            labels,
        )
        yield self._fam.gauge(
            names.NODE_GRAM_AVAILABLE,
            "GPU memory free, bytes.",
            [(r[0], r[1]["free"]) for r in per],
            labels,
        )


def _nvml() -> Any:
    """NVML (``pynvml``), when it is installed and finds a driver; else None."""
    if os.environ.get("EMBER_METRICS_NO_NVML") == "1":
        return None
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
    except Exception as exc:  # noqa: BLE001 - no package, no driver: GPU counts only
        logger.info("no GPU figures beyond the count (NVML: %s)", exc)
        return None
    return pynvml


def _gpu_rows(nvml: Any) -> list[tuple[int, str, dict[str, float]]]:
    out = []
    try:
        for i in range(nvml.nvmlDeviceGetCount()):
            h = nvml.nvmlDeviceGetHandleByIndex(i)
            mem = nvml.nvmlDeviceGetMemoryInfo(h)
            util = nvml.nvmlDeviceGetUtilizationRates(h)
            name = nvml.nvmlDeviceGetName(h)
            out.append(
                (
                    i,
                    name.decode() if isinstance(name, bytes) else str(name),
                    {"util": util.gpu, "used": mem.used, "free": mem.free},
                )
            )
    except Exception as exc:  # noqa: BLE001 - NVML errors are its own classes
        logger.debug("NVML failed: %s", exc)
    return out
