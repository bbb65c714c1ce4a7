"""Tune: trials started per second and total time of N short trials under ASHA.

The same workload runs on ember and on Ray 2.60, each in a fresh process::

    python bench/tune.py                      # both, side by side (Ray via --ray-python)
    python bench/tune.py --backend ember --json /tmp/e.json
    python bench/tune.py --trials 20 --backends ember

Every backend gets ``init(num_cpus=2)``. The trainable reports ``STEPS``
results of a deterministic score; ASHA (max_t=STEPS, grace_period=1,
reduction_factor=2) stops the weak ones early. Figures:

- ``total_s``: wall time of ``Tuner.fit()`` (lower is better);
- ``trials_per_s``: trials started per second over the fit (higher is better);
- ``results_per_s``: results reported per second (higher is better);
- ``best_ok``: whether the best trial is the one with the top ``x`` (a check).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

STEPS = 8


def _workload(backend: str, trials: int) -> dict[str, Any]:
    if backend == "ray":
        import ray
        from ray import tune
        from ray.tune.schedulers import ASHAScheduler
    else:
        import ember as ray
        from ember import tune
        from ember.tune.schedulers import ASHAScheduler

    def trainable(config: dict[str, Any]) -> None:
        for i in range(1, STEPS + 1):
            tune.report({"score": config["x"] * i})

    ray.init(num_cpus=2)
    try:
        order = [(i * 37) % trials for i in range(trials)]
        with tempfile.TemporaryDirectory(prefix="tune-bench-") as storage:
            tuner = tune.Tuner(
                trainable,
                param_space={"x": tune.grid_search(order)},
                tune_config=tune.TuneConfig(
                    metric="score",
                    mode="max",
                    scheduler=ASHAScheduler(
                        max_t=STEPS, grace_period=1, reduction_factor=2
                    ),
                ),
                run_config=tune.RunConfig(storage_path=storage, name="b", verbose=0),
            )
            start = time.perf_counter()
            grid = tuner.fit()
            total = time.perf_counter() - start
            results = sum(int(r.metrics["training_iteration"]) for r in grid)
            best = grid.get_best_result().config["x"] == trials - 1
    finally:
        ray.shutdown()
    return {
        "total_s": round(total, 2),
        "trials_per_s": round(trials / total, 2),
        "results_per_s": round(results / total, 1),
        "best_ok": best,
        "errors": grid.num_errors,
    }


def _run_backend(backend: str, python: str, trials: int) -> dict[str, Any]:
    env = dict(os.environ)
    if backend == "ember":
        src = os.path.join(os.path.dirname(os.path.dirname(__file__)), "src")
        env["PYTHONPATH"] = os.pathsep.join([src, env.get("PYTHONPATH", "")])
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as out:
        path = out.name
    cmd = [python, __file__, "--backend", backend, "--trials", str(trials), "--json", path]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        return {"error": proc.stderr[-800:]}
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    os.unlink(path)
    return data


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", choices=["ember", "ray"])
    parser.add_argument("--backends", default="ember,ray")
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--json")
    parser.add_argument("--ray-python", default="/tmp/ray-venv/bin/python")
    args = parser.parse_args()
    if args.backend:
        data = _workload(args.backend, args.trials)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(data, f)
        else:
            print(json.dumps(data))
        return
    figures: dict[str, dict[str, Any]] = {}
    for backend in args.backends.split(","):
        python = args.ray_python if backend == "ray" else sys.executable
        if backend == "ray" and not os.path.exists(python):
            figures[backend] = {"error": f"no Ray interpreter at {python}"}
            continue
        figures[backend] = _run_backend(backend, python, args.trials)
    names = ["total_s", "trials_per_s", "results_per_s", "best_ok", "errors"]
    print(f"{args.trials} trials, ASHA, {STEPS} steps each, num_cpus=2")
    print(f"| metric | {' | '.join(figures)} |")
    print(f"|---|{'---|' * len(figures)}")
    for name in names:
        cells = [str(figures[b].get(name, "ERR")) for b in figures]
        print(f"| {name} | {' | '.join(cells)} |")
    for backend, data in figures.items():
        if "error" in data:
            print(f"{backend} failed: {data['error']}", file=sys.stderr)


if __name__ == "__main__":
    main()
