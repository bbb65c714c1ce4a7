"""The garbage collector of ember's own processes: collect less often, skip what is loaded.

CPython runs a young-generation collection every 700 new container objects
and, every so often, a full one that walks every live object. The control
path makes many short-lived containers per task (messages, specs, task
events) in processes that hold many long-lived ones (modules, the control
service's tables), so the collector was a large share of their CPU: actor
calls ran 18-24% faster and tasks 3-9% with the threshold below (the control-
path workloads of ``bench/``, 4 alternating rounds).
:func:`tune` raises the young generation's threshold and freezes what
exists at start-up (the imported modules), so full collections skip it.

Daemons and workers call it at start-up; a driver is the user's process and
its collector is left as the user set it (raising the driver's threshold
made the driver-bound task figures slower, not faster, in the same A/B).
``EMBER_GC_THRESHOLD`` sets the young generation's threshold (default
50,000; 0 leaves the collector alone).
"""

from __future__ import annotations

import gc
import os

DEFAULT_THRESHOLD = 50_000


def threshold_from_env() -> int:
    """``EMBER_GC_THRESHOLD`` (0: do not tune)."""
    try:
        return max(0, int(os.environ.get("EMBER_GC_THRESHOLD", DEFAULT_THRESHOLD)))
    except ValueError:
        return DEFAULT_THRESHOLD


def tune(threshold: int | None = None) -> bool:
    """Freeze the objects alive now and collect young objects every ``threshold``.

    Returns whether the collector was changed.
    """
    n = threshold_from_env() if threshold is None else threshold
    if n <= 0 or gc.get_threshold()[0] == n:
        return False  # off, or done already (a worker forked from a tuned server)
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(n, older, oldest)
    return True
