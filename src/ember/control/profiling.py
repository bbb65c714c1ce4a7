"""The control service's opt-in profiler: cProfile over its whole life, to a file.

Off unless ``EMBER_CONTROL_PROFILE`` names a file: then :func:`start` turns
``cProfile`` on before the service's loop starts and :func:`stop` writes the
statistics (``pstats`` format, mode 0600) when it ends, on SIGTERM as on a
normal exit.  ``bench/scale.py`` reads them to show where the control
service's time goes as the cluster grows (``python -m pstats FILE``).
cProfile slows the service down severalfold: figures taken with it on are for
finding hot spots, not for comparison.
"""

from __future__ import annotations

import cProfile
import logging
import marshal
import os

logger = logging.getLogger(__name__)

#: the environment variable naming the profile's file ("" or unset: no profiling)
PROFILE_ENV = "EMBER_CONTROL_PROFILE"


def start() -> tuple[cProfile.Profile, str] | None:
    """Start profiling if ``EMBER_CONTROL_PROFILE`` asks for it."""
    path = os.environ.get(PROFILE_ENV, "")
    if not path:
        return None
    profiler = cProfile.Profile()
    profiler.enable()
    logger.warning("profiling the control service into %s (slow)", path)
    return profiler, path


def stop(started: tuple[cProfile.Profile, str] | None) -> None:
    """Write what :func:`start` collected (a failed write is logged)."""
    if started is None:
        return
    profiler, path = started
    profiler.disable()
    try:
        # what Profile.dump_stats writes, into a file that is 0600 from its start
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            profiler.create_stats()
            marshal.dump(profiler.stats, f)
    except OSError as exc:
        logger.warning("could not write the profile %s: %s", path, exc)
