"""ResultGrid: the Results of every trial of a run, with best-result and dataframe views."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from ember.air.result import Result
from ember.tune import trial_files
from ember.tune.trial import ERROR, TERMINATED, Trial

if TYPE_CHECKING:
    import pandas


def _flatten(d: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def _result_of(trial: Trial) -> Result:
    import pandas  # late: trial actors import this package, not pandas

    rows = trial_files.read_results(trial.local_path)
    frame = pandas.DataFrame([_flatten(r) for r in rows]) if rows else None
    return Result(
        metrics=dict(trial.last_result)
        or {"trial_id": trial.trial_id, "config": trial.config},
        checkpoint=trial.checkpoint,
        error=trial.error if trial.status == ERROR else None,
        path=trial.local_path,
        metrics_dataframe=frame,
        best_checkpoints=trial.best_checkpoints(),
    )


class ResultGrid:
    """Results in trial order; ``get_best_result()`` picks by the run's metric/mode."""

    def __init__(
        self,
        trials: list[Trial],
        experiment_path: str,
        metric: str | None = None,
        mode: str | None = None,
    ) -> None:
        self._trials = trials
        self._results = [_result_of(t) for t in trials]
        self._metric, self._mode = metric, mode
        self.experiment_path = experiment_path
        self.filesystem = "local"

    def __len__(self) -> int:
        return len(self._results)

    def __getitem__(self, i: int) -> Result:
        return self._results[i]

    def __iter__(self) -> Iterator[Result]:
        return iter(self._results)

    @property
    def errors(self) -> list[BaseException]:
        return [r.error for r in self._results if r.error is not None]

    @property
    def num_errors(self) -> int:
        return len(self.errors)

    @property
    def num_terminated(self) -> int:
        return sum(t.status == TERMINATED for t in self._trials)

    def get_best_result(
        self,
        metric: str | None = None,
        mode: str | None = None,
        scope: str = "last",
        filter_nan_and_inf: bool = True,
    ) -> Result:
        """The trial best at ``metric`` by ``mode`` over ``scope`` (last, avg, all, last-N-avg)."""
        if len(self._results) == 1:  # as Ray: the only trial, whatever the metric
            return self._results[0]
        metric = metric or self._metric
        mode = mode or self._mode
        if not metric:
            raise ValueError(
                "No metric is provided. Either pass in a `metric` arg to "
                "`get_best_result` or specify a metric in the `TuneConfig` of your `Tuner`."
            )
        if mode not in ("min", "max"):
            raise ValueError(
                "No mode is provided (or it is not 'min'/'max'). Either pass in a `mode` "
                "arg to `get_best_result` or specify a mode in the `TuneConfig` of your "
                "`Tuner`."
            )
        if scope not in ("last", "avg", "all") and not (
            scope.startswith("last-") and scope.endswith("-avg")
        ):
            raise ValueError(
                "ExperimentAnalysis: attempting to get best trial for metric "
                f'{metric} for scope {scope} not in ["all", "last", "avg", '
                '"last-5-avg", "last-10-avg"].'
            )
        best: Result | None = None
        best_score = -math.inf
        sign = 1 if mode == "max" else -1
        for result in self._results:
            score = self._score(result, metric, mode, scope)
            if score is None or (filter_nan_and_inf and not math.isfinite(score)):
                continue
            if best is None or sign * score > best_score:
                best, best_score = result, sign * score
        if best is None:
            raise RuntimeError(
                f"No best trial found for the given metric: {metric}. This means that no "
                "trial has reported this metric, or all values reported for this metric "
                "are NaN. To not ignore NaN values, you can set the `filter_nan_and_inf` "
                "arg to False."
            )
        return best

    @staticmethod
    def _score(result: Result, metric: str, mode: str, scope: str) -> float | None:
        frame = result.metrics_dataframe
        if scope == "last" or frame is None or metric not in frame:
            value = (result.metrics or {}).get(metric)
            return None if value is None else float(value)
        column = frame[metric].dropna()
        if column.empty:
            return None
        if scope == "all":
            return float(column.max() if mode == "max" else column.min())
        if scope == "avg":
            return float(column.mean())
        count = int(scope.split("-")[1])
        return float(column.tail(count).mean())

    def get_dataframe(
        self, filter_metric: str | None = None, filter_mode: str | None = None
    ) -> pandas.DataFrame:
        """One row per trial: its last result (or its best by filter_metric), flattened."""
        if (filter_metric is None) != (filter_mode is None):
            raise ValueError("filter_metric and filter_mode go together")
        import pandas

        rows = []
        for result in self._results:
            row: dict[str, Any] | None = result.metrics
            frame = result.metrics_dataframe
            if filter_metric and frame is not None and filter_metric in frame:
                column = frame[filter_metric]
                index = column.idxmax() if filter_mode == "max" else column.idxmin()
                row = frame.loc[index].to_dict()
            flat = _flatten(dict(row or {}))
            flat["logdir"] = result.path
            rows.append(flat)
        return pandas.DataFrame(rows)

    def __repr__(self) -> str:
        return "ResultGrid<[\n" + ",\n".join(f"  {r!r}" for r in self._results) + "\n]>"
