"""The process's current core worker (set by init() or the worker entry)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker

_worker: CoreWorker | None = None


def worker_or_none() -> CoreWorker | None:
    return _worker


def set_worker(w: CoreWorker | None) -> None:
    global _worker
    _worker = w
