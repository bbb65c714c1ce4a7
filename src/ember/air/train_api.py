"""Ray Train's spelling of the session calls: report/get_checkpoint/get_context raise outside.

As in Ray 2.60, ``ember.train.report`` & co. raise outside a training function
(Tune's spellings warn and return None instead). Inside a Tune trial they work
(issue 15 asks for the ``ember.train.report`` spelling there) and warn that the
``ember.tune`` spelling is the current one, where Ray 2.60 raises.
"""

from __future__ import annotations

import warnings
from typing import Any

from ember.air import session as _session
from ember.air.checkpoint import Checkpoint


class SessionMisconfigurationError(RuntimeError):
    """A Train session call was made outside a training function."""


def _require(name: str) -> _session.Session:
    current = _session.current()
    if current is None:
        raise SessionMisconfigurationError(
            f"`{name}` cannot be used outside of a training function: it works "
            "inside a function run by a Trainer or a Tuner (this is the driver or "
            "another process that runs none)."
        )
    if current.info.kind == "tune":
        warnings.warn(
            f"`ember.train.{name}` inside a Tune trial: use `ember.tune.{name}` "
            "(Ray 2.60 raises here)",
            DeprecationWarning,
            stacklevel=3,
        )
    return current


def report(
    metrics: dict[str, Any],
    *,
    checkpoint: Checkpoint | None = None,
    checkpoint_dir_name: str | None = None,
) -> None:
    """Report metrics (and optionally a checkpoint) from a training function."""
    _session.warn_checkpoint_dir_name(checkpoint_dir_name)
    _require("report").report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The checkpoint to resume from, or None."""
    return _require("get_checkpoint").checkpoint


def get_context() -> _session.TrainContext:
    """This worker's context (rank, world size, trial/run names)."""
    return _session.TrainContext(_require("get_context").info)
