"""The bounds an RPC connection runs under: deadlines by class, caps, admission.

Every method has a *deadline class* (named in ``ember.protocol.messages``),
and :meth:`Connection.call` applies its class's deadline when the caller
passes none:

=============  =========================================  ===============================
class          for                                        deadline (``Config`` knob)
=============  =========================================  ===============================
``control``    short request/reply RPCs                   ``rpc_control_deadline_s``
``long_poll``  waits bounded by the request's             its ``timeout_s`` +
               ``timeout_s`` (``get_actor_info``, ...)    ``rpc_long_poll_grace_s``;
                                                          none when it has no bound
``push``       a task / actor call / lease whose reply    ``rpc_push_deadline_s``
               waits on user code or resources            (0: none; ends with the
                                                          connection)
``transfer``   one object-transfer chunk                  ``rpc_transfer_deadline_s``
=============  =========================================  ===============================

Admission of peers that have not authenticated yet (:class:`Gate`): a server
holds at most ``max_unauthenticated`` connections in their handshake (and
``max_unauthenticated_per_source`` per TCP source address); a newcomer over
either cap pushes out the *oldest* pending one.  A legitimate client finishes
its handshake in a round trip, so a flood of idle sockets cannot lock it out;
the flood only evicts itself.  Refusals (wrong token, bad version, malformed
or slow handshakes, evictions) are counted and logged as one summary line
per interval (:class:`RefusalLog`), so a flood cannot flood the log either.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import resource
import time
from collections import Counter
from typing import Protocol

from ember.common.config import Config
from ember.rpc.framing import MAX_FRAME_BYTES

logger = logging.getLogger(__name__)

DEADLINE_CLASSES = ("control", "long_poll", "push", "transfer")


@dataclasses.dataclass(frozen=True)
class Limits:
    """Deadlines and bounds for the connections of one process."""

    control_deadline_s: float = 60.0
    long_poll_grace_s: float = 30.0
    transfer_deadline_s: float = 120.0
    push_deadline_s: float = 0.0
    handshake_deadline_s: float = 5.0
    write_high_water_bytes: int = 16 * 1024 * 1024
    max_frame_bytes: int = MAX_FRAME_BYTES
    max_unauthenticated: int = 512
    max_unauthenticated_per_source: int = 128
    refusal_log_interval_s: float = 10.0

    @classmethod
    def from_config(cls, config: Config) -> Limits:
        """The ``rpc_*`` knobs of ``config``."""
        return cls(
            **{
                f.name: getattr(config, "rpc_" + f.name)
                for f in dataclasses.fields(cls)
            }
        )

    def deadline(self, cls_name: str) -> float | None:
        """The deadline of a class: seconds, None for none, ``-grace`` for long polls."""
        if cls_name == "long_poll":
            return -self.long_poll_grace_s if self.long_poll_grace_s > 0 else -1e-9
        seconds = {
            "control": self.control_deadline_s,
            "push": self.push_deadline_s,
            "transfer": self.transfer_deadline_s,
        }[cls_name]
        return seconds if seconds > 0 else None


class Pending(Protocol):
    """What the gate needs of a connection."""

    def abort(self) -> None: ...


class RefusalLog:
    """Counts refused peers by reason; logs one line per interval."""

    def __init__(self, interval_s: float, log: logging.Logger = logger) -> None:
        self._interval_s = interval_s
        self._log = log
        self._counts: Counter[str] = Counter()
        self._last = -float("inf")
        self._timer: asyncio.TimerHandle | None = None
        self.total = 0

    def note(self, reason: str) -> None:
        """Count one refusal."""
        self._counts[reason] += 1
        self.total += 1
        if self._timer is not None:
            return
        wait = self._last + self._interval_s - time.monotonic()
        if wait <= 0:
            self.flush()
            return
        try:
            self._timer = asyncio.get_running_loop().call_later(wait, self.flush)
        except RuntimeError:  # no loop: log at the next refusal after the interval
            pass

    def flush(self) -> None:
        """Log what was counted since the last line."""
        self._timer = None
        if not self._counts:
            return
        n = sum(self._counts.values())
        parts = ", ".join(f"{r}: {c}" for r, c in self._counts.most_common())
        self._log.warning(
            "refused %d unauthenticated peer connection(s) (%s)", n, parts
        )
        self._counts.clear()
        self._last = time.monotonic()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self.flush()


def nofile_soft_limit() -> int:
    """This process's soft limit on open descriptors."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Gate:
    """Bounds the connections of one server that are still in their handshake."""

    def __init__(
        self, max_total: int, max_per_source: int, refusals: RefusalLog
    ) -> None:
        # Leave most descriptors to authenticated peers, whatever the knob says.
        soft = nofile_soft_limit()
        cap = soft // 4 if soft != resource.RLIM_INFINITY else max_total
        self.max_total = max(4, min(max_total, cap))
        self.max_per_source = max(1, min(max_per_source, self.max_total))
        self.refusals = refusals
        self._pending: dict[Pending, str] = {}  # insertion order: oldest first
        self._by_source: dict[str, dict[Pending, None]] = {}

    def admit(self, conn: Pending, source: str) -> None:
        """Hold ``conn`` until :meth:`release`; evict the oldest over a cap."""
        if source:
            mine = self._by_source.setdefault(source, {})
            while len(mine) >= self.max_per_source:
                self._evict(next(iter(mine)), "too many handshakes from one address")
        while len(self._pending) >= self.max_total:
            self._evict(next(iter(self._pending)), "too many handshakes")
        self._pending[conn] = source
        if source:
            self._by_source[source][conn] = None

    def release(self, conn: Pending) -> None:
        """``conn`` authenticated or closed: it no longer counts."""
        source = self._pending.pop(conn, None)
        if source:
            mine = self._by_source.get(source)
            if mine is not None:
                mine.pop(conn, None)
                if not mine:
                    del self._by_source[source]

    def pending(self) -> int:
        return len(self._pending)

    def _evict(self, conn: Pending, reason: str) -> None:
        self.release(conn)
        self.refusals.note(reason)
        conn.abort()
