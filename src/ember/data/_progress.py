"""Per-operator progress bars (tqdm), drawn only on a terminal and when DataContext allows."""

from __future__ import annotations

import sys
from typing import Any

from ember.data.context import DataContext


class ProgressBars:
    """One bar per stage, counting the blocks it produced (as Ray Data draws them)."""

    def __init__(self, names: list[str], total: int, ctx: DataContext) -> None:
        self._bars: list[Any] = []
        #: the stage index of the first bar (only the last stage's when not per operator)
        self._first = 0
        if not names or not ctx.enable_progress_bars or not _is_tty():
            return
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency of ember
            return
        shown = names if ctx.enable_operator_progress_bars else names[-1:]
        self._first = len(names) - len(shown)
        for i, name in enumerate(shown):
            self._bars.append(
                tqdm(
                    total=total or None,
                    desc=f"- {name}",
                    position=i,
                    leave=False,
                    unit=" blocks",
                )
            )

    def update(self, stage: int) -> None:
        i = stage - self._first
        if 0 <= i < len(self._bars):
            self._bars[i].update(1)

    def close(self) -> None:
        for bar in self._bars:
            bar.close()
        self._bars = []


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
