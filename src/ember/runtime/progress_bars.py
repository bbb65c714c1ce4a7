"""The driver's progress bars: drawing the states that tasks' tqdm_ray bars send.

A ``tqdm_ray.tqdm`` in a task or actor prints its state as one JSON line
holding the magic token (:data:`ember.runtime.log_dedup.TQDM_MAGIC`); the
line travels with the worker's other output to the driver, whose log
printer hands it here instead of printing it. A bar made in the driver
itself calls :meth:`BarManager.update` directly. Each bar (keyed by its
``uuid``) is drawn once, by a real ``tqdm`` on the driver's stderr, at the
lowest screen row no other open bar uses, plus its ``position``; closing it
frees the row. Bars from other processes carry a ``(pid=N)`` prefix (and
``ip=`` when they ran on another machine). Printing worker lines first
hides the bars (:meth:`BarManager.hidden`) so that lines and bars do not
mix on the screen.

Without the ``tqdm`` package the states are dropped with one warning.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger(__name__)
DIM_CYAN = "\x1b[2m\x1b[36m"
RESET = "\x1b[0m"


class _Bar:
    def __init__(self, real: Any, state: dict[str, Any], row: int) -> None:
        self.real = real
        self.state = state
        self.row = row


class BarManager:
    """Every bar this driver draws (thread-safe: the loop thread and user threads)."""

    def __init__(
        self, ip: str = "", pid: int | None = None, colour: bool = False
    ) -> None:
        self.ip = ip
        self.pid = os.getpid() if pid is None else pid
        self.colour = colour
        self.bars: dict[str, _Bar] = {}
        self._lock = threading.RLock()
        self._warned = False

    def update_line(self, line: str) -> None:
        """Apply a state line a worker printed (a bad line is ignored)."""
        try:
            state = json.loads(line)
        except ValueError:
            return
        if isinstance(state, dict) and "uuid" in state:
            self.update(state)

    def update(self, state: dict[str, Any]) -> None:
        """Create, advance or close the bar ``state['uuid']``."""
        tqdm = _tqdm()
        if tqdm is None:
            if not self._warned:
                self._warned = True
                logger.warning("tqdm is not installed: progress bars are not drawn")
            return
        with self._lock:
            bar = self.bars.get(state["uuid"])
            if bar is None:
                if state.get("closed") and not state.get("x"):
                    return
                bar = self._open(tqdm, state)
            self._apply(bar, state)
            if state.get("closed"):
                bar.real.close()
                del self.bars[state["uuid"]]

    def _open(self, tqdm: Any, state: dict[str, Any]) -> _Bar:
        used = {b.row for b in self.bars.values()}
        row = next(r for r in range(len(used) + 1) if r not in used)
        real = tqdm(
            desc=self._desc(state),
            total=state.get("total"),
            unit=state.get("unit") or "it",
            position=row + int(state.get("pos") or 0),
            dynamic_ncols=True,
            file=sys.stderr,
        )
        bar = _Bar(real, dict(state, x=0), row)
        self.bars[state["uuid"]] = bar
        return bar

    def _desc(self, state: dict[str, Any]) -> str:
        desc = str(state.get("desc") or "")
        pid, ip = state.get("pid"), state.get("ip")
        if pid == self.pid and ip in ("", self.ip, None):
            return desc
        who = f"pid={pid}" if ip in ("", self.ip, None) else f"pid={pid}, ip={ip}"
        prefix = f"({who}) "
        if self.colour:
            prefix = f"{DIM_CYAN}{prefix}{RESET}"
        return prefix + desc

    def _apply(self, bar: _Bar, state: dict[str, Any]) -> None:
        old = bar.state
        if state.get("desc") != old.get("desc"):
            bar.real.set_description(self._desc(state), refresh=False)
        if state.get("total") != old.get("total"):
            bar.real.total = state.get("total")
        delta = int(state.get("x") or 0) - int(old.get("x") or 0)
        if delta:
            bar.real.update(delta)
        bar.real.refresh()
        bar.state = state

    @contextlib.contextmanager
    def hidden(self) -> Iterator[None]:
        """Clear the bars while lines are printed, then draw them again."""
        with self._lock:
            bars = list(self.bars.values())
            for b in bars:
                b.real.clear()
            try:
                yield
            finally:
                for b in bars:
                    b.real.refresh()

    def close_all(self) -> None:
        with self._lock:
            for b in self.bars.values():
                b.real.close()
            self.bars.clear()


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm


_manager: BarManager | None = None
_manager_lock = threading.Lock()


def manager(ip: str = "", colour: bool = False) -> BarManager:
    """This process's bar manager (made on first use)."""
    global _manager
    with _manager_lock:
        if _manager is None:
            _manager = BarManager(ip=ip, colour=colour)
        return _manager


def manager_or_none() -> BarManager | None:
    return _manager
