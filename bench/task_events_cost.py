"""The cost of task events: the control-path figures with EMBER_TASK_EVENTS=0 and =1.

Usage::

    python bench/task_events_cost.py [--rounds 3] [--only A,B]
                                     [--json bench/results/task_events.json]
    python bench/task_events_cost.py --micro    # per-event recording cost only

Each round runs ``workloads.py --backend ember`` of this tree once with task
events off and once on (off, on, off, on, ... so that the machine's drift
hits both), and reports each figure's median with the change of "on"
against "off" (negative: events cost that much).  ``--micro`` times the hot
path alone: one ``task_events.record_state`` of a state tuple, as the submitter and
the executor make it, in ns per event.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ab import CONTROL_PATH, change  # bench/ is sys.path[0] when run as a script
from run import aggregate, fmt

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"


def run_once(label: str, enabled: bool, only: list[str]) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(prefix=f"te-{label}-", suffix=".json")
    os.close(fd)
    os.unlink(out)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "src")
    env["EMBER_TASK_EVENTS"] = "1" if enabled else "0"
    cmd = [sys.executable, str(WORKLOADS), "--backend", "ember", "--json", out]
    cmd += ["--only", ",".join(only)]
    print(f"--- task events {label}", file=sys.stderr, flush=True)
    subprocess.run(cmd, env=env, cwd=str(HERE.parent), check=False)
    try:
        with open(out) as f:
            data: dict[str, Any] = json.load(f)
        os.unlink(out)
    except (OSError, ValueError) as exc:
        data = {"results": {}, "error": repr(exc)}
    data["backend"] = label
    return data


def micro(n: int = 20_000, repeat: int = 15) -> float:
    """ns per recorded event (the hot path: a tuple and one list append).

    Each run records ``n`` events into an emptied buffer, as the sender drains
    it every second; the best of ``repeat`` runs is reported.
    """
    import timeit

    sys.path.insert(0, str(HERE.parent / "src"))
    from ember.runtime import task_events as te

    env = {
        "record": te.record_state,
        "now": time.time,
        "tid": b"t" * 16,
        "R": te.RUNNING,
        "E": te.STATES,
    }
    runs = timeit.repeat(
        "record((tid, 0, R, now()))",
        setup="del E[:]",
        globals=env,
        number=n,
        repeat=repeat,
    )
    del te.STATES[:]
    return min(runs) / n * 1e9


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(CONTROL_PATH))
    ap.add_argument("--json", default=str(HERE / "results" / "task_events.json"))
    ap.add_argument("--micro", action="store_true")
    args = ap.parse_args(argv)
    if args.micro:
        print(f"task_events.record_state: {micro():.0f} ns per event")
        return 0
    only = [n for n in args.only.split(",") if n]
    rounds = []
    for _ in range(args.rounds):
        rounds.append(run_once("off", False, only))
        rounds.append(run_once("on", True, only))
    off, on = aggregate(rounds, "off"), aggregate(rounds, "on")
    lines = [
        "| figure | unit | events off | events on | change |",
        "|---|---|---:|---:|---:|",
    ]
    for name in only:
        b, n = off.get(name, {}), on.get(name, {})
        c = change(b, n)
        unit = b.get("unit") or n.get("unit") or ""
        pct = "-" if c is None else f"{100 * c:+.1f}%"
        lines.append(
            f"| {name} | {unit} | {fmt(b.get('value'))} | {fmt(n.get('value'))} | {pct} |"
        )
    print("\n".join(lines))
    Path(args.json).write_text(
        json.dumps({"rounds": rounds, "medians": {"off": off, "on": on}}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
