"""``node.get_system_stats``: the machine's CPU, memory, disk and network counters.

The dashboard samples every node with it (``dashboard/history.py``).  The
figures are psutil's, as the node's Prometheus endpoint reads them
(``metrics/system.py``), but cumulative: CPU seconds and bytes rather than
percentages and rates, so that the reader computes rates between its own
two readings and readers do not disturb each other (``psutil.cpu_percent``
keeps one interval per process).  The processes are the node's workers and
the drivers that registered with it, with their CPU seconds and RSS.

The readings take well under a millisecond each, on the daemon's loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import psutil

from ember.protocol.messages import ProcessStats, SystemStatsReply

#: (pid, worker id, is_driver) of every live process of the node
ProcessList = Callable[[], list[tuple[int, bytes, bool]]]
#: (store bytes used, store capacity, bytes of live objects in spill files)
StoreFigures = Callable[[], tuple[int, int, int]]


class SystemStats:
    """Answers ``node.get_system_stats`` for one node."""

    def __init__(
        self,
        node_id: bytes,
        disk_path: str,
        store: StoreFigures,
        processes: ProcessList,
    ) -> None:
        self._node_id = node_id
        self._disk_path = disk_path
        self._store = store
        self._processes = processes
        self._procs: dict[int, psutil.Process] = {}

    def handlers(self) -> dict[str, Any]:
        return {"node.get_system_stats": self.h_get_system_stats}

    def h_get_system_stats(self, conn: Any, req: Any, bufs: Any) -> SystemStatsReply:
        return self.read()

    def read(self) -> SystemStatsReply:
        """The counters now."""
        cpu = psutil.cpu_times()
        total = sum(cpu)
        idle = cpu.idle + getattr(cpu, "iowait", 0.0)
        mem = psutil.virtual_memory()
        try:
            disk_total, disk_used = _disk(self._disk_path)
        except OSError:
            disk_total = disk_used = 0
        net = psutil.net_io_counters()
        used, capacity, spilled = self._store()
        return SystemStatsReply(
            node_id=self._node_id,
            time_s=time.time(),
            cpu_count=psutil.cpu_count() or 0,
            cpu_busy_s=max(total - idle, 0.0),
            cpu_total_s=total,
            mem_total=mem.total,
            mem_used=mem.total - mem.available,
            disk_total=disk_total,
            disk_used=disk_used,
            net_sent=net.bytes_sent if net else 0,
            net_recv=net.bytes_recv if net else 0,
            store_used=used,
            store_total=capacity,
            store_spilled=spilled,
            processes=self._process_stats(),
        )

    def _process_stats(self) -> list[ProcessStats]:
        out = []
        live = self._processes()
        for pid, worker_id, is_driver in live:
            p = self._procs.get(pid)
            try:
                if p is None:
                    p = self._procs[pid] = psutil.Process(pid)
                with p.oneshot():
                    t = p.cpu_times()
                    rss = p.memory_info().rss
            except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
                self._procs.pop(pid, None)
                out.append(
                    ProcessStats(
                        pid=pid, worker_id=worker_id, is_driver=is_driver, alive=False
                    )
                )
                continue
            out.append(
                ProcessStats(
                    pid=pid,
                    worker_id=worker_id,
                    is_driver=is_driver,
                    cpu_s=t.user + t.system,
                    rss=rss,
                )
            )
        pids = {pid for pid, _, _ in live}
        for pid in [p for p in self._procs if p not in pids]:
            del self._procs[pid]
        return out


def _disk(path: str) -> tuple[int, int]:
    usage = psutil.disk_usage(path)
    return usage.total, usage.used
