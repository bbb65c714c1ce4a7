"""The worker's process title, as ``ps`` shows it (Ray's ``ray::...`` names).

``ember::IDLE`` while a worker waits for work, ``ember::<task name>`` while it
runs a task, ``ember::<Class>`` for an actor's process between calls and
``ember::<Class>.<method>`` during one. Without ``setproctitle`` installed the
title is left alone.
"""

from __future__ import annotations

from collections.abc import Callable

_set: Callable[[str], None] | None
try:
    from setproctitle import getproctitle, setproctitle

    # Set up now: the fork server imports this module before it forks, and a
    # child that clears its environment first could no longer find room for
    # a long title.
    getproctitle()
    _set = setproctitle
except ImportError:  # pragma: no cover - it is a dependency
    _set = None

IDLE = "ember::IDLE"

_idle = IDLE


def running(name: str) -> None:
    """A task or actor call named ``name`` starts in this process."""
    if _set is not None:
        _set(f"ember::{name}")


def idle() -> None:
    """The call ended: back to the title between calls."""
    if _set is not None:
        _set(_idle)


def became_actor(class_name: str) -> None:
    """This process now hosts an actor of ``class_name``: its title between calls."""
    global _idle
    _idle = f"ember::{class_name}"
    idle()
