"""log_once: a per-process "first time for this key" test for rate-limited logging."""

from __future__ import annotations

import threading
import time

#: how long periodic mode waits before keys may log again
PERIOD_S = 60.0

_lock = threading.Lock()
_seen: set[str] = set()
_disabled = False
_periodic = False
_last_reset = 0.0


def log_once(key: str) -> bool:
    """True the first time this process asks about ``key``, False afterwards.

    After :func:`disable_log_once_globally` it is always False; after
    :func:`enable_periodic_logging` every key may log again once a minute.
    """
    global _last_reset
    with _lock:
        if _disabled:
            return False
        now = time.monotonic()
        if _periodic and now - _last_reset > PERIOD_S:
            _seen.clear()
            _last_reset = now
        if key in _seen:
            return False
        _seen.add(key)
        return True


def disable_log_once_globally() -> None:
    """Make :func:`log_once` return False in this process from now on."""
    global _disabled
    _disabled = True


def enable_periodic_logging() -> None:
    """Let every key of :func:`log_once` log again once per minute."""
    global _periodic, _last_reset
    with _lock:
        _periodic = True
        _last_reset = time.monotonic()


def reset_log_once(key: str | None = None) -> None:
    """Forget ``key`` (or every key), so the next :func:`log_once` is True."""
    with _lock:
        if key is None:
            _seen.clear()
        else:
            _seen.discard(key)
