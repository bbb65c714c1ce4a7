"""``ember.util.progress(refs)``: waiting for many refs with a progress bar, then getting them.

Ray has no public helper for this (Ray Data draws its own bars
internally); ember's is documented in docs/seams/logs.md. The bar is a
driver-side ``tqdm_ray`` bar, so it shares the screen with the bars that
tasks draw. It advances as refs become ready (``wait`` with a short slice,
so a long list costs one scan per slice, not one per ref), and the values
come back as ``get(refs)`` returns them: in order, raising a task's error
as ``get`` does.
"""

from __future__ import annotations

import collections
import time
from collections.abc import Sequence
from typing import Any

import ember
from ember.exceptions import GetTimeoutError
from ember.experimental.tqdm_ray import tqdm

#: how long one wait() slice lasts: the bar's refresh period while nothing finishes
SLICE_S = 0.1


def progress(
    refs: Sequence[Any],
    *,
    desc: str = "",
    unit: str = "it",
    timeout: float | None = None,
) -> list[Any]:
    """The values of ``refs`` (as ``get``), drawing a bar while they finish.

    Args:
        refs: a list of ObjectRefs (a single ref is a TypeError, as for ``wait``).
        desc: the bar's description.
        unit: the bar's unit ("it").
        timeout: at most this many seconds in total; then GetTimeoutError.
    """
    if not isinstance(refs, (list, tuple)):
        raise TypeError(
            f"progress() expects a list of ObjectRefs, got {type(refs).__name__}"
        )
    if timeout is not None and timeout < 0:
        raise ValueError(f"progress() 'timeout' must be nonnegative, got {timeout}")
    refs = list(refs)
    deadline = None if timeout is None else time.monotonic() + timeout
    bar = tqdm(desc=desc, total=len(refs), unit=unit, flush_interval_s=0.0)
    times = collections.Counter(refs)  # a ref listed twice counts twice
    pending = list(times)  # wait() refuses duplicates
    try:
        while pending:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise GetTimeoutError(
                    f"progress(): {len(pending)} of {len(refs)} refs were not ready "
                    f"within {timeout} s"
                )
            slice_s = SLICE_S if left is None else min(SLICE_S, left)
            ready, pending = ember.wait(
                pending, num_returns=len(pending), timeout=slice_s, fetch_local=False
            )
            if ready:
                bar.update(sum(times[r] for r in ready))
    finally:
        bar.close()
    left = None if deadline is None else max(0.0, deadline - time.monotonic())
    return list(ember.get(refs, timeout=left))
