"""The console output of a run: the trial-status table and per-trial boxes (Ray's layout)."""

from __future__ import annotations

import collections
import datetime
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from ember.tune.search.variant_generator import format_value
from ember.tune.trial import Trial

_AUTO = (
    "training_iteration",
    "time_total_s",
    "time_this_iter_s",
    "checkpoint_dir_name",
)


def _box(title: str, rows: list[tuple[str, str]]) -> str:
    width = max([len(title)] + [len(k) + len(v) + 4 for k, v in rows]) + 2
    lines = ["╭" + "─" * width + "╮", "│ " + title.ljust(width - 1) + "│"]
    lines.append("├" + "─" * width + "┤")
    for key, value in rows:
        gap = width - 2 - len(key) - len(value)
        lines.append("│ " + key + " " * gap + value + " │")
    lines.append("╰" + "─" * width + "╯")
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        parts = [c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True))]  # fmt: skip
        return "│ " + "   ".join(parts) + " │"

    inner = len(line(header)) - 2
    out = ["╭" + "─" * inner + "╮", line(header), "├" + "─" * inner + "┤"]
    out += [line(r) for r in rows]
    out.append("╰" + "─" * inner + "╯")
    return "\n".join(out)


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out.update(_flat(value, f"{prefix}{key}/"))
        else:
            out[f"{prefix}{key}"] = value
    return out


def best_trial(
    trials: list[Trial], metric: str | None, mode: str | None
) -> Trial | None:
    if not metric or not mode:
        return None
    scored = [t for t in trials if metric in t.last_result]
    if not scored:
        return None
    sign = 1 if mode == "max" else -1
    return max(scored, key=lambda t: sign * t.last_result[metric])


def status_text(
    trials: list[Trial],
    metric: str | None,
    mode: str | None,
    elapsed_s: float,
    resources: tuple[float, float],
    now: datetime.datetime | None = None,
) -> str:
    """The periodic status block: counts, best trial, the table of trials."""
    counts = collections.Counter(t.status for t in trials)
    now = now or datetime.datetime.now()
    used = sum(t.resources.get("CPU", 0.0) for t in trials if t.status == "RUNNING")
    lines = [
        "Trial status: " + " | ".join(f"{n} {s}" for s, n in counts.items()),
        f"Current time: {now:%Y-%m-%d %H:%M:%S}. Total running time: {int(elapsed_s)}s",
        f"Logical resource usage: {used}/{resources[0]:g} CPUs, 0/{resources[1]:g} GPUs",
    ]
    best = best_trial(trials, metric, mode)
    if best is not None and metric is not None:
        lines.append(
            f"Current best trial: {best.trial_id} with {metric}="
            f"{best.last_result[metric]} and params={best.config}"
        )
    params = list(dict.fromkeys(k for t in trials for k in _flat(t.config)))
    header = ["Trial name", "status", *params, "iter", "total time (s)"]
    metrics: list[str] = [metric] if metric else []
    header += metrics
    rows = []
    for t in trials:
        flat = _flat(t.config)
        r = t.last_result
        rows.append(
            [t.trial_name, t.status]
            + [format_value(flat[p]) if p in flat else "" for p in params]
            + [
                str(r.get("training_iteration", "")),
                format_value(r["time_total_s"]) if "time_total_s" in r else "",
            ]
            + [format_value(r[m]) if m in r else "" for m in metrics]
        )
    return "\n".join(lines) + "\n" + _table(header, rows)


class ConsoleReporter:
    """Prints trial events (verbose >= 2) and the status table (verbose >= 1)."""

    def __init__(
        self,
        verbose: int,
        metric: str | None,
        mode: str | None,
        resources: tuple[float, float],
        interval_s: float = 30.0,
        out: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.verbose = verbose
        self.metric, self.mode = metric, mode
        self.resources = resources
        self.interval_s = interval_s
        self.out = out or sys.stdout
        self.clock = clock
        self.start = clock()
        self.last_print = -float("inf")

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def trial_started(self, trial: Trial) -> None:
        if self.verbose >= 2:
            rows = [(k, format_value(v)) for k, v in _flat(trial.config).items()]
            self._print(f"\nTrial {trial.trial_name} started with configuration:")
            self._print(_box(f"Trial {trial.trial_name} config", rows))

    def trial_ended(self, trial: Trial) -> None:
        if self.verbose < 2:
            return
        r = trial.last_result
        elapsed = int(self.clock() - self.start)
        if trial.status == "ERROR":
            self._print(
                f"\nTrial {trial.trial_name} errored after "
                f"{r.get('training_iteration', 0)} iterations at "
                f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S}. Total running time: "
                f"{elapsed}s\nError: {trial.error_msg}"
            )
            return
        self._print(
            f"\nTrial {trial.trial_name} completed after "
            f"{r.get('training_iteration', 0)} iterations at "
            f"{datetime.datetime.now():%Y-%m-%d %H:%M:%S}. Total running time: {elapsed}s"
        )
        shown = [k for k in _AUTO if k in r] + [
            k for k, v in r.items()
            if k not in _AUTO and not k.startswith("config") and isinstance(v, int | float)
            and k not in _HIDDEN
        ]  # fmt: skip
        self._print(
            _box(
                f"Trial {trial.trial_name} result",
                [(k, format_value(r[k])) for k in shown],
            )
        )

    def status(self, trials: list[Trial], force: bool = False) -> None:
        now = self.clock()
        if self.verbose < 1 or (not force and now - self.last_print < self.interval_s):
            return
        self.last_print = now
        self._print(
            "\n"
            + status_text(
                trials, self.metric, self.mode, now - self.start, self.resources
            )
        )


_HIDDEN = {
    "timestamp", "done", "should_checkpoint", "pid", "iterations_since_restore",
    "time_since_restore",
}  # fmt: skip
