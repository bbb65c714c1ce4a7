"""A progress line for a Dask-on-ember run, fed by ``ProgressBarCallback``'s actor."""

from __future__ import annotations

import sys
from pprint import pformat
from typing import Any

import ember

#: How long one wait for the results lasts before the line is redrawn.
REFRESH_S = 0.2


def show_progress(recorder: Any, refs: list[Any], out: Any = None) -> None:
    """Redraw "finished/submitted" on ``out`` (stderr) until ``refs`` are ready.

    Waiting on the refs themselves paces the loop (no sleep); the report of
    per-task timings is printed at the end, as Ray does.
    """
    out = out if out is not None else sys.stderr
    pending = list(refs)
    while True:
        submitted, finished = ember.get(recorder.result.remote())
        print(f"\rDask tasks: {finished}/{submitted} finished", end="", file=out)
        if not pending:
            break
        _, pending = ember.wait(
            pending, num_returns=len(pending), timeout=REFRESH_S, fetch_local=False
        )
    print(file=out)
    print(pformat(ember.get(recorder.report.remote())), file=out)
