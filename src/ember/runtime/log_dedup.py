"""Deduplication of worker output lines repeated across workers (pure, no I/O).

Theory of operation (Ray 2.60's behaviour, ``ray._private.ray_logging``):

- A line is reduced to a *key* by dropping every word that holds a digit
  or a hex number (pids, counters, addresses differ between workers).
- The first line with a key is printed at once and remembered, with the
  time and its source (ip, pid).
- A later line with that key from a *second* source (or from any source,
  once two have sent it) is not printed but counted; a line from the only
  source seen so far is printed (a loop printing in one worker is output,
  not noise).
- When a remembered key is older than the window (5 s), it is settled:
  with more than one repeat counted, one summary line is printed (the
  latest instance, ``[repeated 9x across cluster]``) and counting starts
  over for another window; with exactly one, that line itself is printed
  and the key is forgotten; with none, it is forgotten.
- Lines holding the tqdm magic token, lines matching the allow regex and
  lines with an empty key are never deduplicated; lines matching the skip
  regex are dropped.
- At shutdown :meth:`LogDeduplicator.flush` settles everything.

Ray settles keys only when the next batch arrives; ember's printer also
calls :meth:`LogDeduplicator.expire` from a timer, so a summary shows about
one window after the burst even when nothing else is printed.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any

#: Ray's switch and ember's; "0"/"false" turns deduplication off
ENABLE_VARS = ("EMBER_DEDUP_LOGS", "RAY_DEDUP_LOGS")
WINDOW_VARS = ("EMBER_DEDUP_LOGS_AGG_WINDOW_S", "RAY_DEDUP_LOGS_AGG_WINDOW_S")
ALLOW_VARS = ("EMBER_DEDUP_LOGS_ALLOW_REGEX", "RAY_DEDUP_LOGS_ALLOW_REGEX")
SKIP_VARS = ("EMBER_DEDUP_LOGS_SKIP_REGEX", "RAY_DEDUP_LOGS_SKIP_REGEX")
DEFAULT_WINDOW_S = 5.0
#: the magic token of tqdm_ray's state lines (Ray's, so that Ray's bars parse too)
TQDM_MAGIC = "__ray_tqdm_magic_token__"
_NUMBERS = re.compile(r"(\d+|0x[0-9a-fA-F]+)")
HINT = (
    " (ember deduplicates logs by default. Set EMBER_DEDUP_LOGS=0 to disable log "
    "deduplication, or EMBER_DEDUP_LOGS_ALLOW_REGEX / _SKIP_REGEX to choose lines.)"
)


def _env(names: tuple[str, ...]) -> str | None:
    for n in names:
        v = os.environ.get(n)
        if v is not None:
            return v
    return None


def dedup_enabled() -> bool:
    """``EMBER_DEDUP_LOGS`` (or ``RAY_DEDUP_LOGS``): on unless 0/false/no/off."""
    raw = _env(ENABLE_VARS)
    return raw is None or raw.strip().lower() not in ("0", "false", "no", "off")


def canonical(line: str) -> str:
    """The dedup key of ``line``: its words that hold no digit and no hex number."""
    return " ".join(w for w in line.split() if not _NUMBERS.search(w))


@dataclasses.dataclass
class Batch:
    """Lines from one source, with what is needed to print their prefix."""

    source: tuple[str, int]
    lines: list[str]
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class _Seen:
    since: float
    count: int
    line: str
    meta: dict[str, Any]
    sources: set[tuple[str, int]]


class LogDeduplicator:
    """One stream's (stdout's or stderr's) memory of recent lines."""

    def __init__(
        self,
        window_s: float = DEFAULT_WINDOW_S,
        allow_re: str | None = None,
        skip_re: str | None = None,
    ) -> None:
        self.window_s = window_s
        self._allow = re.compile(allow_re) if allow_re else None
        self._skip = re.compile(skip_re) if skip_re else None
        #: key -> what was seen, oldest first (insertion order)
        self.recent: dict[str, _Seen] = {}
        self._hinted = False

    @classmethod
    def from_env(cls) -> LogDeduplicator:
        raw = _env(WINDOW_VARS)
        try:
            window = float(raw) if raw else DEFAULT_WINDOW_S
        except ValueError:
            raise ValueError(
                f"{WINDOW_VARS[0]}={raw!r} is not a number of seconds"
            ) from None
        return cls(window, _env(ALLOW_VARS), _env(SKIP_VARS))

    def deduplicate(self, batch: Batch, now: float) -> list[Batch]:
        """What to print for ``batch`` now: its new lines first, then settled summaries."""
        out = Batch(batch.source, [], batch.meta)
        for line in batch.lines:
            if TQDM_MAGIC in line or (self._allow and self._allow.search(line)):
                out.lines.append(line)
                continue
            if self._skip and self._skip.search(line):
                continue
            key = canonical(line)
            if not key:
                out.lines.append(line)
                continue
            seen = self.recent.get(key)
            if seen is None:
                self.recent[key] = _Seen(now, 0, line, batch.meta, {batch.source})
                out.lines.append(line)
                continue
            seen.sources.add(batch.source)
            if len(seen.sources) > 1:
                seen.count += 1
                seen.line, seen.meta = line, batch.meta
            else:
                out.lines.append(line)
        return [out, *self.expire(now)]

    def expire(self, now: float) -> list[Batch]:
        """Settle the keys older than the window (see the module's theory)."""
        out: list[Batch] = []
        while self.recent:
            key, seen = next(iter(self.recent.items()))
            if now - seen.since < self.window_s:
                break
            del self.recent[key]
            if seen.count > 1:
                out.append(self._summary(seen))
                seen.since, seen.count = now, 0
                self.recent[key] = seen
            elif seen.count == 1:
                out.append(Batch(("", 0), [seen.line], seen.meta))
        return out

    def next_expiry(self) -> float | None:
        """When the oldest key settles (None: nothing remembered)."""
        for seen in self.recent.values():
            return seen.since + self.window_s
        return None

    def flush(self) -> list[Batch]:
        """Settle every key now (shutdown)."""
        out: list[Batch] = []
        for seen in self.recent.values():
            if seen.count > 1:
                out.append(self._summary(seen))
            elif seen.count == 1:
                out.append(Batch(("", 0), [seen.line], seen.meta))
        self.recent.clear()
        return out

    def _summary(self, seen: _Seen) -> Batch:
        hint = "" if self._hinted else HINT
        self._hinted = True
        meta = dict(
            seen.meta, repeated=f" [repeated {seen.count}x across cluster]{hint}"
        )
        return Batch(("", 0), [seen.line], meta)
