"""Per-operator progress bars (tqdm), drawn only on a terminal and when DataContext allows."""

from __future__ import annotations

import sys
from typing import Any

from ember.data.context import DataContext


class ProgressBars:
    """One bar per stage, counting the blocks it produced (as Ray Data draws them)."""

    def __init__(self, names: list[str], total: int, ctx: DataContext) -> None:
        self._bars: list[Any] = []
        if not names or not ctx.enable_progress_bars or not _is_tty():
            return
        try:
            from tqdm import tqdm
        except ImportError:  # pragma: no cover - tqdm is a dependency of ember
            return
        shown = names if ctx.enable_operator_progress_bars else names[-1:]
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
        if self._bars and stage < len(self._bars):
            self._bars[stage].update(1)

    def close(self) -> None:
        for bar in self._bars:
            bar.close()
        self._bars = []


def _is_tty() -> bool:
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False
