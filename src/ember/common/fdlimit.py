"""Raising this process's open-descriptor limit, once, at daemon start."""

from __future__ import annotations

import logging
import resource

logger = logging.getLogger(__name__)


def raise_nofile_limit() -> int:
    """Raise the soft ``RLIMIT_NOFILE`` to the hard limit; return the new soft limit.

    A daemon holds a descriptor per peer connection (plus the shared-memory
    arena and pipes); the common default soft limit (1024) is far below what
    the kernel allows.  Failure is logged and leaves the limit as it was.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft == hard:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:
        logger.warning(
            "could not raise the open-file limit %d to %d: %s", soft, hard, exc
        )
        return soft
    return hard
