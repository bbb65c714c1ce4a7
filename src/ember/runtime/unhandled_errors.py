"""Reporting failed results that nobody fetched, when their last ref is dropped.

A task that fails while its caller never calls ``get`` (or ``wait``) on its
result would fail silently. As Ray does, the owner logs such an error once,
when the error is dropped: either its last ref went away unread
(``Objects.release``), or the error arrived after the last ref was already
gone (a fire-and-forget ``f.remote()``). ``EMBER_IGNORE_UNHANDLED_ERRORS=1``
(or Ray's ``RAY_IGNORE_UNHANDLED_ERRORS``) turns the report off. Cancelled
tasks are not reported (the caller asked for that outcome), nor are system
errors such as the ``ActorDiedError`` of a call that ran ``exit_actor()``:
only exceptions user code raised, as Ray's report shows them. The report
goes straight to stderr (as Ray's own logger does), not through the user's
logging configuration, in red on a terminal (``ember.runtime.log_printer.red``).
"""

from __future__ import annotations

import os
import sys
from typing import Any

from ember import exceptions as exc_mod
from ember.runtime.log_printer import red
from ember.runtime.serialization import deserialize

IGNORE_VARS = ("EMBER_IGNORE_UNHANDLED_ERRORS", "RAY_IGNORE_UNHANDLED_ERRORS")


def report(data: Any, bufs: list[Any]) -> None:
    """Log the pickled error ``data`` as unhandled (loop thread; never raises)."""
    if any(os.environ.get(v) for v in IGNORE_VARS):
        return
    try:
        error = deserialize(data, bufs)
        if not isinstance(error, exc_mod.TaskError) or _cancelled(error):
            # Only what user code raised: a cancel was asked for, and system
            # errors (an actor's intended exit, a crash) are reported elsewhere.
            return
        text = str(error)
    except Exception as exc:  # noqa: BLE001  (a user exception that does not load)
        text = f"<an error that could not be unpickled: {exc!r}>"
    try:
        sys.stderr.write(
            red(
                f"Unhandled error (suppress with 'EMBER_IGNORE_UNHANDLED_ERRORS=1'): {text}",
                sys.stderr,
            )
            + "\n"
        )
        sys.stderr.flush()
    except (OSError, ValueError):  # stderr is closed
        pass


def _cancelled(error: Any) -> bool:
    if isinstance(error, exc_mod.TaskError):
        error = error.cause
    return isinstance(error, exc_mod.TaskCancelledError)
