"""The session of one trial (or training worker): report(), get_checkpoint(), get_context().

The actor that hosts a trial opens a :class:`Session` and binds it to the thread
that runs the user's function. ``report()`` hands the metrics (and a persisted
copy of the checkpoint) to the actor and blocks until the driver asks for the
next result, so the driver's scheduler decides between any two reports.
Outside a session the calls warn and return None, as Ray's do.
"""

from __future__ import annotations

import dataclasses
import os
import queue
import shutil
import threading
import warnings
from typing import Any

from ember.air.checkpoint import Checkpoint

_local = threading.local()


class SessionStopped(BaseException):
    """Raised inside report() when the driver stopped the trial (unwinds the user's code)."""


@dataclasses.dataclass
class TrialInfo:
    """Who a session belongs to."""

    name: str
    id: str
    dir: str
    experiment_name: str
    resources: dict[str, float]
    storage_path: str = ""
    #: "tune" for a Tune trial; a Train worker group's sessions say "train"
    kind: str = "tune"
    #: a training worker's place in its group (a Tune trial is rank 0 of 1)
    world_rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    local_world_size: int = 1
    node_rank: int = 0


@dataclasses.dataclass
class Report:
    """One report(): the metrics and the persisted checkpoint's directory name."""

    metrics: dict[str, Any]
    checkpoint_dir_name: str | None


class Session:
    """The hand-off between a user's function thread and its hosting actor."""

    def __init__(
        self, info: TrialInfo, checkpoint: Checkpoint | None, next_index: int = 0
    ) -> None:
        self.info = info
        self.checkpoint = checkpoint
        self.next_index = next_index
        self.reports: queue.Queue[Report | BaseException | None] = queue.Queue()
        self._resume = threading.Semaphore(0)
        self.stopped = False

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> None:
        if not isinstance(metrics, dict):
            raise TypeError(f"report() takes a dict of metrics, got {type(metrics)}")
        name = None
        if checkpoint is not None:
            name = self.persist(checkpoint)
        self.reports.put(Report(dict(metrics), name))
        self._resume.acquire()
        if self.stopped:
            raise SessionStopped()

    def persist(self, checkpoint: Checkpoint) -> str:
        """Copy a checkpoint into the trial dir as checkpoint_NNNNNN; the new name."""
        name = f"checkpoint_{self.next_index:06d}"
        self.next_index += 1
        dest = os.path.join(self.info.dir, name)
        if os.path.abspath(checkpoint.path) != os.path.abspath(dest):
            shutil.copytree(checkpoint.path, dest, dirs_exist_ok=True)
        self.checkpoint = Checkpoint(dest)
        return name

    def resume(self) -> None:
        """Let the function run on to its next report()."""
        self._resume.release()

    def stop(self) -> None:
        self.stopped = True
        self._resume.release()


def bind(session: Session | None) -> None:
    """Make ``session`` the current thread's session (None unbinds)."""
    _local.session = session


def current() -> Session | None:
    return getattr(_local, "session", None)


def _outside(name: str) -> None:
    warnings.warn(
        f"`{name}` is meant to only be called inside a function that is executed "
        "by a Tuner or Trainer. Returning `None`.",
        stacklevel=3,
    )


def warn_checkpoint_dir_name(name: str | None) -> None:
    """``checkpoint_dir_name`` is not acted on yet: say so (checkpoints are named
    ``checkpoint_NNNNNN``)."""
    if name is not None:
        warnings.warn(
            "report(checkpoint_dir_name=...) is ignored by ember: checkpoints are "
            "named checkpoint_NNNNNN",
            stacklevel=3,
        )


def report(
    metrics: dict[str, Any],
    *,
    checkpoint: Checkpoint | None = None,
    checkpoint_dir_name: str | None = None,
) -> None:
    """Report metrics (and optionally a checkpoint) from inside a trial."""
    warn_checkpoint_dir_name(checkpoint_dir_name)
    session = current()
    if session is None:
        _outside("report")
        return
    session.report(metrics, checkpoint)


def get_checkpoint() -> Checkpoint | None:
    """The latest checkpoint of this trial (to resume from), or None."""
    session = current()
    if session is None:
        _outside("get_checkpoint")
        return None
    return session.checkpoint


class TrainContext:
    """What a trial knows about itself (Ray: ``TuneContext`` / ``TrainContext``)."""

    def __init__(self, info: TrialInfo | None) -> None:
        self._info = info

    def _get(self, name: str, value: Any) -> Any:
        if self._info is None:
            _outside(name)
            return None
        return value

    def get_trial_name(self) -> str | None:
        return self._get("get_trial_name", self._info and self._info.name)

    def get_trial_id(self) -> str | None:
        return self._get("get_trial_id", self._info and self._info.id)

    def get_trial_dir(self) -> str | None:
        return self._get("get_trial_dir", self._info and self._info.dir)

    def get_trial_resources(self) -> dict[str, float] | None:
        return self._get("get_trial_resources", self._info and self._info.resources)

    def get_experiment_name(self) -> str | None:
        return self._get(
            "get_experiment_name", self._info and self._info.experiment_name
        )

    def get_storage(self) -> str | None:
        return self._get("get_storage", self._info and self._info.storage_path)

    def get_world_size(self) -> int | None:
        return self._get("get_world_size", self._info and self._info.world_size)

    def get_world_rank(self) -> int | None:
        return self._get("get_world_rank", self._info and self._info.world_rank)

    def get_local_rank(self) -> int | None:
        return self._get("get_local_rank", self._info and self._info.local_rank)

    def get_local_world_size(self) -> int | None:
        return self._get(
            "get_local_world_size", self._info and self._info.local_world_size
        )

    def get_node_rank(self) -> int | None:
        return self._get("get_node_rank", self._info and self._info.node_rank)


class TuneContext(TrainContext):
    """The context of a Tune trial."""


def get_context() -> TuneContext:
    """This trial's context (its getters warn and return None outside a trial)."""
    session = current()
    return TuneContext(session.info if session is not None else None)
