"""``multiprocessing``-compatible pool whose worker processes are actors.

Use it as ``from ember.util.multiprocessing import Pool`` in place of
``from multiprocessing import Pool``.
"""

from __future__ import annotations

from multiprocessing import JoinableQueue, TimeoutError

from ember.util.multiprocessing.pool import Pool

__all__ = ["JoinableQueue", "Pool", "TimeoutError"]
