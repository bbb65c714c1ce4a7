"""Compare two ember source trees on the same workloads, alternating rounds.

Usage::

    git worktree add /tmp/ember-base <commit>
    python bench/ab.py --base /tmp/ember-base [--new .] [--rounds 3]
                       [--only A,B] [--json bench/results/ab.json]

Each round runs ``workloads.py --backend ember`` once with ``PYTHONPATH`` set to
the base tree's ``src`` and once with the new tree's (base, new, base, new, ...
so that the machine's drift hits both); each figure's median over rounds is
reported with the change of new against base, signed so that a positive
change is an improvement.  Both trees run under the interpreter running this
script, so they share its installed dependencies.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from run import aggregate, fmt  # bench/ is sys.path[0] when run as a script

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"

#: the control-path figures (what issue 8 bounds at "no worse than 3%")
CONTROL_PATH = (
    "single_client_tasks_sync",
    "single_client_tasks_async",
    "single_client_tasks_async_10k",
    "multi_client_tasks_async",
    "actor_calls_sync_1_1",
    "actor_calls_async_1_1",
    "actor_calls_concurrent_threaded",
    "async_actor_calls",
    "actor_calls_n_n",
    "actor_creation_per_s",
    "put_small_per_s",
    "get_small_per_s",
    "put_get_small",
    "wait_1000_refs_s",
)


def run_tree(label: str, tree: Path, args: argparse.Namespace) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(prefix=f"ab-{label}-", suffix=".json")
    os.close(fd)
    os.unlink(out)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(tree / "src")
    cmd = [sys.executable, str(WORKLOADS), "--backend", "ember", "--json", out]
    cmd += ["--only", ",".join(args.only)]
    print(f"--- {label}: {tree}", file=sys.stderr, flush=True)
    # the child is not killed on a timeout: workloads.py has its own watchdog
    subprocess.run(cmd, env=env, cwd=str(tree), check=False)
    try:
        with open(out) as f:
            data: dict[str, Any] = json.load(f)
        os.unlink(out)
    except (OSError, ValueError) as exc:
        data = {"results": {}, "error": repr(exc)}
    data["backend"] = label
    return data


def change(base: dict[str, Any], new: dict[str, Any]) -> float | None:
    """Relative change of new against base, positive when new is better."""
    if "value" not in base or "value" not in new or not base["value"]:
        return None
    rel = new["value"] / base["value"] - 1.0
    return rel if base["better"] == "higher" else -rel


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, type=Path)
    ap.add_argument("--new", default=HERE.parent, type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(CONTROL_PATH))
    ap.add_argument("--json", default=str(HERE / "results" / "ab.json"))
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    rounds = []
    for _ in range(args.rounds):
        rounds.append(run_tree("base", args.base.resolve(), args))
        rounds.append(run_tree("new", args.new.resolve(), args))
    base, new = aggregate(rounds, "base"), aggregate(rounds, "new")
    lines = ["| figure | unit | base | new | change (+ = new better) |"]
    lines.append("|---|---|---:|---:|---:|")
    for name in args.only:
        b, n = base.get(name, {}), new.get(name, {})
        c = change(b, n)
        unit = b.get("unit") or n.get("unit") or ""
        cells = [fmt(b.get("value")), fmt(n.get("value"))]
        pct = "-" if c is None else f"{100 * c:+.1f}%"
        lines.append(f"| {name} | {unit} | {cells[0]} | {cells[1]} | {pct} |")
    text = "\n".join(lines)
    print(text)
    Path(args.json).write_text(
        json.dumps(
            {
                "base": str(args.base),
                "new": str(args.new),
                "rounds": rounds,
                "medians": {"base": base, "new": new},
            },
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
