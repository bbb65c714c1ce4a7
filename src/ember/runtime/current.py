"""The process's current core worker (set by init() or the worker entry).

Typed ``Any`` on purpose: this module is imported by ``object_ref`` and
``core_worker``, so it may not import the core worker back (no import cycles
in ``ember.runtime``).  ``object_ref`` reads it as its own ``RefHost``.
"""

from __future__ import annotations

from typing import Any

_worker: Any = None


def worker_or_none() -> Any:
    """The running ``CoreWorker``, or None."""
    return _worker


def set_worker(w: Any) -> None:
    global _worker
    _worker = w
