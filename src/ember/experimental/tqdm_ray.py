"""``ember.experimental.tqdm_ray``: a tqdm usable in tasks and actors, drawn at the driver.

As Ray's ``ray.experimental.tqdm_ray``: the same class, arguments and
methods (a subset of tqdm's). In a worker, each (rate-limited) update is
printed as one JSON line holding Ray's magic token; the line travels with
the worker's output to the job's driver, whose printer draws every bar in
one place (:mod:`ember.runtime.progress_bars`) instead of printing the line.
In the driver itself a bar updates the driver's manager directly.

The driver needs the ``tqdm`` package (a dependency of ember); the state
lines also land in the worker's ``.out`` file, as Ray's do.
"""

from __future__ import annotations

import builtins
import json
import os
import sys
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from ember.runtime import current, progress_bars
from ember.runtime.log_dedup import TQDM_MAGIC
from ember.runtime.log_printer import colour_enabled

RAY_TQDM_MAGIC = TQDM_MAGIC
PATCH_PRINT_VARS = ("EMBER_TQDM_PATCH_PRINT", "RAY_TQDM_PATCH_PRINT")
_print = builtins.print
_patch_lock = threading.Lock()
_patched = False


def safe_print(*args: Any, **kwargs: Any) -> None:
    """``print`` that clears the driver's bars first (print is patched to this)."""
    if kwargs.get("file") not in (sys.stdout, sys.stderr, None):
        _print(*args, **kwargs)
        return
    bars = progress_bars.manager_or_none()
    if bars is None or not bars.bars:
        _print(*args, **kwargs)
        return
    with bars.hidden():
        _print(*args, **kwargs)


def instance() -> progress_bars.BarManager:
    """The driver's bar manager (and, unless EMBER_TQDM_PATCH_PRINT=0, print -> safe_print)."""
    global _patched
    cw = current.worker_or_none()
    ip = getattr(cw, "node_ip", "") or ""
    mgr = progress_bars.manager(ip, colour_enabled(sys.stderr))
    with _patch_lock:
        if not _patched and all(os.environ.get(v) != "0" for v in PATCH_PRINT_VARS):
            builtins.print = safe_print
            _patched = True
    return mgr


def _in_worker() -> bool:
    cw = current.worker_or_none()
    return cw is not None and not cw.is_driver


class tqdm:
    """A progress bar whose updates are drawn by the driver (Ray's ``tqdm_ray.tqdm``)."""

    DEFAULT_FLUSH_INTERVAL_SECONDS = 1.0

    def __init__(
        self,
        iterable: Iterable[Any] | None = None,
        desc: str | None = None,
        total: int | None = None,
        unit: str | None = None,
        position: int | None = None,
        flush_interval_s: float | None = None,
    ) -> None:
        if total is None and iterable is not None:
            try:
                total = len(iterable)  # type: ignore[arg-type]
            except (TypeError, AttributeError):
                total = None
        cw = current.worker_or_none()
        self._iterable = iterable
        self._desc = desc or ""
        self._total = total
        self._unit = unit or "it"
        self._ip = getattr(cw, "node_ip", "") or ""
        self._pid = os.getpid()
        self._pos = position or 0
        self._uuid = uuid.uuid4().hex
        self._x = 0
        self._closed = False
        self._flush_interval_s = (
            self.DEFAULT_FLUSH_INTERVAL_SECONDS
            if flush_interval_s is None
            else flush_interval_s
        )
        self._last_flush = 0.0

    def set_description(self, desc: str) -> None:
        self._desc = desc
        self._dump_state()

    def update(self, n: int = 1) -> None:
        self._x += n
        self._dump_state()

    def close(self) -> None:
        self._closed = True
        self._dump_state(force_flush=True)

    def refresh(self) -> None:
        self._dump_state()

    @property
    def total(self) -> int | None:
        return self._total

    @total.setter
    def total(self, total: int) -> None:
        self._total = total

    @property
    def n(self) -> int:
        return self._x

    @n.setter
    def n(self, n: int) -> None:
        self._x = n

    def __iter__(self) -> Iterator[Any]:
        if self._iterable is None:
            raise ValueError("No iterable provided")
        for x in iter(self._iterable):
            self.update(1)
            yield x

    def _get_state(self) -> dict[str, Any]:
        return {
            "__magic_token__": TQDM_MAGIC,
            "x": self._x,
            "pos": self._pos,
            "desc": self._desc,
            "total": self._total,
            "unit": self._unit,
            "ip": self._ip,
            "pid": self._pid,
            "uuid": self._uuid,
            "closed": self._closed,
        }

    def _dump_state(self, force_flush: bool = False) -> None:
        now = time.monotonic()
        if not force_flush and now - self._last_flush < self._flush_interval_s:
            return
        self._last_flush = now
        if _in_worker():
            # One write with its newline, so that the line cannot be split.
            sys.stdout.write(json.dumps(self._get_state()) + "\n")
        else:
            instance().update(self._get_state())
