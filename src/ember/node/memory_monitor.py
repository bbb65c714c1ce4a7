"""The node's memory monitor: kill one worker when node memory passes a threshold.

Theory of operation::

    every refresh_ms:  sample = read_memory()      cgroup v2 (memory.max and
         |                                          memory.current of the daemon's
         |                                          cgroup) or the machine (psutil)
         v
    KillGate.due(sample)?  -- no: below threshold, or the last victim not reaped yet
         | yes
         v
    choose_victim(candidates)   pure; candidates are the workers of granted leases,
         |                      so the daemon, the control service and drivers
         v                      (never leased) can never be chosen
    kill(victim, WorkerDeathReply(kind="oom", message=report))  -> SIGKILL
    KillGate.killed(pid): no further kill until that pid has exited

The choice follows Ray's group-by-owner policy: retriable work goes before
non-retriable work; retriable workers are grouped by owner (every
non-retriable worker is in one group); the largest group goes first, then the
group whose earliest lease is the newest; inside a group, the newest lease.
One greedy owner thus loses its own tasks before anybody else's.

The sampling/decision core (``parse_cgroup``, ``choose_victim``, ``KillGate``,
``oom_report``) is pure; ``read_memory``, ``top_processes`` and
``MemoryMonitor.run`` are the thin I/O around it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
from collections.abc import Callable, Mapping
from typing import Any

import psutil

from ember.protocol.messages import WorkerDeathReply

logger = logging.getLogger(__name__)

REFRESH_ENV = "EMBER_MEMORY_MONITOR_REFRESH_MS"
THRESHOLD_ENV = "EMBER_MEMORY_USAGE_THRESHOLD"
SCOPE_ENV = "EMBER_MEMORY_MONITOR_SCOPE"
SCOPES = ("machine", "node")
#: a victim that has not exited this long after its SIGKILL no longer blocks kills
VICTIM_GRACE_S = 10.0


@dataclasses.dataclass(frozen=True)
class MonitorSettings:
    """The monitor's two knobs."""

    #: sampling period; 0 turns the monitor off
    refresh_ms: int = 250
    #: the fraction of node memory above which a worker is killed
    threshold: float = 0.95
    #: "machine": the cgroup's or the machine's use; "node": only the RSS of this
    #: daemon and its descendants counts as used (several nodes on one machine)
    scope: str = "machine"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> MonitorSettings:
        env = os.environ if env is None else env
        refresh = int(env.get(REFRESH_ENV, cls.refresh_ms))
        threshold = float(env.get(THRESHOLD_ENV, cls.threshold))
        scope = env.get(SCOPE_ENV, "") or cls.scope
        if scope not in SCOPES:
            raise ValueError(f"{SCOPE_ENV} must be one of {SCOPES}; got {scope!r}")
        if refresh < 0:
            raise ValueError(f"{REFRESH_ENV} must be >= 0 (0: off); got {refresh}")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"{THRESHOLD_ENV} must be in (0, 1]; got {threshold}")
        return cls(refresh_ms=refresh, threshold=threshold, scope=scope)


@dataclasses.dataclass(frozen=True)
class MemorySample:
    """Node memory at one moment."""

    used_bytes: int
    total_bytes: int
    #: "cgroup" (the daemon's cgroup v2 limit), "system" (the machine) or "node"
    #: (the RSS of this node's processes, out of the cgroup's or machine's total)
    source: str

    @property
    def fraction(self) -> float:
        return self.used_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A worker the monitor may kill: one that serves a granted lease."""

    pid: int
    retriable: bool
    #: who the work belongs to (the lease's owner id, or its holder connection)
    owner: Any
    #: when the lease was granted (monotonic seconds): larger is newer
    granted_at: float
    name: str = ""
    for_actor: bool = False


# -- pure core ----------------------------------------------------------------------
def parse_cgroup(
    proc_cgroup: str, read: Callable[[str], str | None], root: str = "/sys/fs/cgroup"
) -> MemorySample | None:
    """The cgroup v2 sample of the process whose ``/proc/<pid>/cgroup`` is ``proc_cgroup``.

    ``read(path)`` returns a file's text or None. None when the process is in no
    cgroup v2 hierarchy or its cgroup has no memory limit (``max``).
    """
    path = ""
    for line in proc_cgroup.splitlines():
        if line.startswith("0::"):
            path = line[3:].strip()
            break
    else:
        return None
    folder = root.rstrip("/") + ("" if path in ("", "/") else path)
    limit = read(f"{folder}/memory.max")
    current = read(f"{folder}/memory.current")
    if limit is None or current is None or limit.strip() == "max":
        return None
    try:
        total, used = int(limit), int(current)
    except ValueError:
        return None
    # Page cache the kernel can drop first is not memory pressure.
    stat = read(f"{folder}/memory.stat") or ""
    for line in stat.splitlines():
        key, _, value = line.partition(" ")
        if key == "inactive_file" and value.strip().isdigit():
            used = max(0, used - int(value))
    return MemorySample(used_bytes=used, total_bytes=total, source="cgroup")


def choose_victim(candidates: list[Candidate]) -> Candidate | None:
    """The worker to kill, by the group-by-owner policy (module docstring)."""
    if not candidates:
        return None
    groups: dict[tuple[bool, Any], list[Candidate]] = {}
    for c in candidates:
        key = (True, c.owner) if c.retriable else (False, None)
        groups.setdefault(key, []).append(c)

    def rank(item: tuple[tuple[bool, Any], list[Candidate]]) -> tuple[int, int, float]:
        (retriable, _), members = item
        earliest = min(m.granted_at for m in members)
        return (0 if retriable else 1, -len(members), -earliest)

    _, members = min(groups.items(), key=rank)
    return max(members, key=lambda m: m.granted_at)


class KillGate:
    """When a kill is due: above the threshold, and the previous victim is gone."""

    def __init__(self, threshold: float) -> None:
        self.threshold = threshold
        #: pid of the last victim still alive, and when it was killed
        self.victim: int | None = None
        self.killed_at = 0.0
        self.kills = 0

    def due(self, sample: MemorySample, now: float) -> bool:
        if sample.fraction < self.threshold:
            return False
        # After a kill, wait until the victim is gone (its memory is back) to judge again.
        return self.victim is None or now - self.killed_at >= VICTIM_GRACE_S

    def killed(self, pid: int, now: float) -> None:
        self.victim, self.killed_at = pid, now
        self.kills += 1

    def exited(self, pid: int) -> None:
        if pid == self.victim:
            self.victim = None


def oom_report(
    sample: MemorySample,
    threshold: float,
    victim: Candidate,
    top: list[tuple[int, int, str]],
) -> str:
    """The sentence the user gets for a worker the monitor killed."""
    gib = 1024**3
    where = {
        "cgroup": "the node's cgroup memory limit",
        "node": f"the memory used by this node's processes ({SCOPE_ENV}=node)",
    }.get(sample.source, "the machine's memory")
    lines = [
        f"The worker (pid={victim.pid}) running {victim.name or 'a task'!r} was killed "
        f"by the memory monitor because the node was running out of memory (OOM): "
        f"memory use was {sample.used_bytes / gib:.2f}GB / {sample.total_bytes / gib:.2f}GB "
        f"({sample.fraction:.3f}) of {where}, above the threshold {threshold:.3f}.",
        "The processes using the most memory (RSS) on this node:",
        "PID\tRSS(GB)\tNAME",
    ]
    lines += [f"{pid}\t{rss / gib:.2f}\t{name}" for pid, rss, name in top]
    lines.append(
        "To avoid this: reduce the memory each task uses, ask for `memory=` in the task "
        "or actor options so that fewer run at once, or add memory to the node. To change "
        f"the monitor, set {THRESHOLD_ENV} (now {threshold}) or {REFRESH_ENV} "
        "(0 turns it off) in the environment of the node daemon. Killed tasks are retried "
        "while max_retries allows (max_restarts / max_task_retries for actors)."
    )
    return "\n".join(lines)


# -- I/O ---------------------------------------------------------------------------
def _read_text(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


def read_memory() -> MemorySample:
    """This node's memory: its cgroup v2 limit when it has one, else the machine's."""
    proc = _read_text("/proc/self/cgroup") or ""
    sample = parse_cgroup(proc, _read_text)
    if sample is not None:
        return sample
    vm = psutil.virtual_memory()
    return MemorySample(
        used_bytes=vm.total - vm.available, total_bytes=vm.total, source="system"
    )


def read_node_memory(root_pid: int) -> MemorySample:
    """The RSS of ``root_pid`` and its descendants, out of the node's total memory."""
    total = read_memory().total_bytes
    used = 0
    try:
        root = psutil.Process(root_pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        procs = []
    for p in procs:
        try:
            used += p.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            pass
    return MemorySample(used_bytes=used, total_bytes=total, source="node")


def top_processes(n: int = 8) -> list[tuple[int, int, str]]:
    """The ``n`` processes with the largest RSS: (pid, rss bytes, command)."""
    found: list[tuple[int, int, str]] = []
    for p in psutil.process_iter(["pid", "memory_info", "cmdline", "name"]):
        info = p.info
        mem = info.get("memory_info")
        if mem is None:
            continue
        cmd = " ".join(info.get("cmdline") or ()) or info.get("name") or "?"
        found.append((info["pid"], mem.rss, cmd[:80]))
    found.sort(key=lambda t: -t[1])
    return found[:n]


class MemoryMonitor:
    """The sampling loop, run by the node daemon's supervisor."""

    def __init__(
        self,
        settings: MonitorSettings,
        candidates: Callable[[], list[Candidate]],
        kill: Callable[[Candidate, WorkerDeathReply], bool],
        sample: Callable[[], MemorySample] | None = None,
        processes: Callable[[], list[tuple[int, int, str]]] = top_processes,
    ) -> None:
        self.settings = settings
        self.gate = KillGate(settings.threshold)
        self._candidates = candidates
        self._kill = kill
        if sample is None:
            pid = os.getpid()
            node = settings.scope == "node"
            sample = (lambda: read_node_memory(pid)) if node else read_memory
        self._sample = sample
        self._processes = processes

    @property
    def enabled(self) -> bool:
        return self.settings.refresh_ms > 0

    @property
    def kills(self) -> int:
        return self.gate.kills

    def worker_exited(self, pid: int) -> None:
        self.gate.exited(pid)

    async def run(self) -> None:
        period = self.settings.refresh_ms / 1000
        while True:
            await asyncio.sleep(period)
            await self.check()

    async def check(self) -> bool:
        """One sample; kill one worker if that is due. True if one was killed."""
        loop = asyncio.get_running_loop()
        sample = await asyncio.to_thread(self._sample)
        if not self.gate.due(sample, loop.time()):
            return False
        victim = choose_victim(self._candidates())
        if victim is None:
            return False
        top = await asyncio.to_thread(self._processes)
        report = oom_report(sample, self.settings.threshold, victim, top)
        death = WorkerDeathReply(
            kind="oom", signal="SIGKILL", exit_code=-9, message=report
        )
        logger.warning("%s", report)
        if not self._kill(victim, death):
            return False
        self.gate.killed(victim.pid, loop.time())
        return True
