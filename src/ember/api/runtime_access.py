"""This process's current Runtime: installed by init(), attached in workers, auto-started.

``runtime()`` is on every hot path (``.remote()``, ``get``): one global read
and a None check when a runtime is installed. When none is, it attaches a
:class:`~ember.api.cluster_runtime.ClusterRuntime` to the process's core
worker (a worker process, whose core worker was started by its entry point)
or calls ``init()`` (a driver's first use, as Ray does).

``init`` registers that hook with :func:`set_starter`. This module imports
no other module of ``ember.api`` beyond the protocol, which keeps the
package free of import cycles (``init`` depends on this module, not the
reverse).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from ember.api.runtime import Runtime

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker

_runtime: Runtime | None = None
_start: Callable[[], Runtime] | None = None


def runtime() -> Runtime:
    """The current Runtime; attaches to this worker or calls ``init()`` on first use."""
    rt = _runtime
    if rt is not None:
        return rt
    if _start is None:
        raise RuntimeError("ember.api.init was not imported: import ember first")
    return _start()


def worker() -> CoreWorker:
    """The core worker behind the current Runtime (for tests and tools; the API
    itself only talks to the Runtime). Raises RuntimeError in local mode."""
    cw: CoreWorker | None = getattr(runtime(), "cw", None)
    if cw is None:
        raise RuntimeError("local mode has no core worker")
    return cw


def current_or_none() -> Runtime | None:
    """The installed Runtime, or None (nothing is started)."""
    return _runtime


def install(rt: Runtime | None) -> None:
    """Make ``rt`` the current Runtime (None: there is none)."""
    global _runtime
    _runtime = rt


def set_starter(start: Callable[[], Runtime]) -> None:
    """Register what ``runtime()`` calls when no Runtime is installed."""
    global _start
    _start = start
