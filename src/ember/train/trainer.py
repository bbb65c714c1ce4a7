"""DataParallelTrainer: run a training loop on a group of workers, with restarts.

Theory of operation.  ``fit()`` makes the run's folder
(``storage_path/name``), then runs attempts until one finishes or the
failures exceed ``FailureConfig.max_failures``.  An attempt is a
:class:`~ember.train.group.WorkerGroup`; every worker starts the user's
loop with the latest checkpoint (``get_checkpoint()``), its dataset shards
and its ranks.  The driver then takes one event from every worker per
round: all report -> the round is recorded (rank 0's metrics; the
checkpoint folder the ranks wrote, if any) and all resume; all return -> the
run is done; an error, a mix of both, or a dead worker -> the attempt fails,
the group is removed and, if failures are left, a new one starts from the
latest checkpoint.  Checkpoints beyond ``CheckpointConfig.num_to_keep`` are
deleted (the best by ``checkpoint_score_attribute``, else the newest, are
kept, and the latest always is).
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable
from typing import Any

import ember
from ember import exceptions
from ember.air import session as air_session
from ember.air.checkpoint import Checkpoint
from ember.air.config import CheckpointConfig, FailureConfig, RunConfig
from ember.air.result import Result
from ember.train.config import ScalingConfig
from ember.train.group import WorkerGroup

logger = logging.getLogger(__name__)


class TrainingFailedError(RuntimeError):
    """The training run failed more often than ``FailureConfig.max_failures`` allows."""


class _Kept:
    """The run's checkpoints and the metrics each came with; trims to ``num_to_keep``."""

    def __init__(self, config: CheckpointConfig) -> None:
        self.config = config
        self.items: list[tuple[Checkpoint, dict[str, Any]]] = []

    @property
    def latest(self) -> Checkpoint | None:
        return self.items[-1][0] if self.items else None

    def add(self, checkpoint: Checkpoint, metrics: dict[str, Any]) -> None:
        self.items.append((checkpoint, metrics))
        keep = self.config.num_to_keep
        if keep is None or len(self.items) <= keep:
            return
        attr = self.config.checkpoint_score_attribute
        older = self.items[:-1]
        if attr is not None:
            sign = 1 if self.config.checkpoint_score_order == "max" else -1
            ranked = sorted(older, key=lambda it: sign * float(it[1].get(attr, 0.0)))
            ranked.reverse()  # best first
        else:
            ranked = list(reversed(older))  # newest first
        survivors = {id(it) for it in ranked[: max(keep - 1, 0)]}
        for it in older:
            if id(it) not in survivors:
                shutil.rmtree(it[0].path, ignore_errors=True)
        self.items = [it for it in older if id(it) in survivors] + [self.items[-1]]


class DataParallelTrainer:
    """Runs ``train_loop_per_worker`` on ``scaling_config.num_workers`` workers."""

    def __init__(
        self,
        train_loop_per_worker: Callable[..., Any],
        *,
        train_loop_config: dict[str, Any] | None = None,
        backend_config: Any = None,
        scaling_config: ScalingConfig | None = None,
        run_config: RunConfig | None = None,
        datasets: dict[str, Any] | None = None,
        dataset_config: Any = None,
        resume_from_checkpoint: Checkpoint | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if not callable(train_loop_per_worker):
            raise TypeError(
                f"train_loop_per_worker must be callable, got {type(train_loop_per_worker)}"
            )
        if backend_config is not None or dataset_config is not None:
            raise ValueError(
                "backend_config and dataset_config are not supported by ember yet"
            )
        if resume_from_checkpoint is not None or metadata is not None:
            raise DeprecationWarning(
                "resume_from_checkpoint and metadata are deprecated (as in Ray 2.60): "
                "pass the checkpoint through train_loop_config and load it there"
            )
        if scaling_config is not None and not isinstance(scaling_config, ScalingConfig):
            raise TypeError(
                f"scaling_config must be a ScalingConfig, got {scaling_config!r}"
            )
        self.train_loop_per_worker = train_loop_per_worker
        self.train_loop_config = train_loop_config
        self.scaling_config = scaling_config or ScalingConfig()
        self.run_config = run_config or RunConfig()
        self.datasets = dict(datasets or {})

    # -- the run ---------------------------------------------------------------------
    def fit(self) -> Result:
        """Train; the result of the run (raises TrainingFailedError if it failed)."""
        run = self.run_config
        name = run.name or f"ember_train_{time.strftime('%Y-%m-%d_%H-%M-%S')}"
        storage = os.path.expanduser(run.storage_path or "~/ember_results")
        path = os.path.join(storage, name)
        os.makedirs(path, mode=0o700, exist_ok=True)
        failure = run.failure_config or FailureConfig()
        kept = _Kept(run.checkpoint_config or CheckpointConfig())
        history: list[dict[str, Any]] = []
        failures = 0
        info = air_session.TrialInfo(
            name=name,
            id=uuid.uuid4().hex[:8],
            dir=path,
            experiment_name=name,
            resources=self.scaling_config.total_resources,
            storage_path=storage,
            kind="train",
        )
        while True:
            try:
                self._attempt(info, kept, history)
                break
            except _AttemptFailed as failed:
                failures += 1
                allowed = failure.max_failures
                if allowed != -1 and failures > allowed:
                    raise TrainingFailedError(
                        f"the training run {name!r} failed {failures} time(s) "
                        f"(FailureConfig.max_failures={allowed}): {failed.cause!r}"
                    ) from failed.cause
                logger.warning(
                    "training run %s: attempt %d failed (%r); restarting from %s",
                    name,
                    failures,
                    failed.cause,
                    kept.latest,
                )
        return Result(
            metrics=history[-1] if history else {},
            checkpoint=kept.latest,
            error=None,
            path=path,
            metrics_dataframe=_frame(history),
            best_checkpoints=list(kept.items),
        )

    def _attempt(
        self,
        info: air_session.TrialInfo,
        kept: _Kept,
        history: list[dict[str, Any]],
    ) -> None:
        group = WorkerGroup(self.scaling_config)
        try:
            shards = self._shards(len(group.workers))
            next_index = len(history)  # checkpoint names keep counting up
            starts = []
            for rank, w in enumerate(group.workers):
                r = group.ranks
                winfo = _with_ranks(info, rank, r)
                starts.append(
                    w.start.remote(
                        self.train_loop_per_worker,
                        self.train_loop_config,
                        winfo,
                        kept.latest,
                        next_index,
                        {k: v[rank] for k, v in shards.items()},
                    )
                )
            ember.get(starts)
            self._rounds(group, info, kept, history)
        finally:
            group.shutdown()

    def _rounds(
        self,
        group: WorkerGroup,
        info: air_session.TrialInfo,
        kept: _Kept,
        history: list[dict[str, Any]],
    ) -> None:
        workers = group.workers
        while True:
            try:
                events = ember.get([w.next.remote() for w in workers])
            except (exceptions.RayActorError, exceptions.WorkerCrashedError) as exc:
                raise _AttemptFailed(exc) from exc
            kinds = {kind for kind, _ in events}
            errors = [v for kind, v in events if kind == "error"]
            if errors:
                raise _AttemptFailed(errors[0])
            if kinds == {"done"}:
                return
            if kinds != {"report"}:
                raise _AttemptFailed(
                    RuntimeError(
                        "the workers called report() a different number of times: "
                        "every worker must report the same number of times"
                    )
                )
            metrics, ckpt_name = events[0][1]
            names = {v[1] for _, v in events if v[1] is not None}
            ckpt_name = ckpt_name or (min(names) if names else None)
            row = dict(metrics)
            history.append(row)
            if ckpt_name is not None:
                kept.add(Checkpoint(os.path.join(info.dir, ckpt_name)), row)
            ember.get([w.resume.remote() for w in workers])

    def _shards(self, n: int) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = {}
        for key, ds in self.datasets.items():
            ds = ds() if callable(ds) and not hasattr(ds, "streaming_split") else ds
            split = getattr(ds, "streaming_split", None)
            if split is None:
                raise TypeError(
                    f"datasets[{key!r}] is not an ember.data Dataset: {type(ds)}"
                )
            out[key] = list(split(n, equal=True))
        return out


class _AttemptFailed(Exception):
    def __init__(self, cause: BaseException) -> None:
        super().__init__(repr(cause))
        self.cause = cause


def _with_ranks(info: air_session.TrialInfo, rank: int, ranks: Any) -> Any:
    import dataclasses

    return dataclasses.replace(
        info,
        world_rank=rank,
        world_size=ranks.world_size,
        local_rank=ranks.local_rank[rank],
        local_world_size=ranks.local_world_size[rank],
        node_rank=ranks.node_rank[rank],
    )


def _frame(history: list[dict[str, Any]]) -> Any:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with ember's test deps
        return None
    return pd.DataFrame(history)
