"""Runtime-env setup time: the same ``pip`` list, first (built) and cached, ember vs Ray.

One fresh driver process per backend and round (so each starts with a new
session and an empty env cache)::

    python bench/runtime_env.py                      # both backends, 3 rounds -> JSON on stdout
    python bench/runtime_env.py --backends ember --rounds 1 --packages pyjokes,six
    python bench/runtime_env.py --child ember --packages pyjokes   # one measurement

Figures (seconds, from ``.remote()`` until ``get`` returns; the task imports
every package and returns):

- ``first_s``: the first task of the env: the node builds it (virtualenv and
  ``pip install`` from the index, no pip cache: both backends pass
  ``--no-cache-dir`` by default) and starts a worker in it;
- ``cached_new_worker_s``: the same ``pip`` list with other ``env_vars``: a
  new worker, but the built env is found in the node's cache;
- ``warm_s``: the first env again: an idle worker of it is reused;
- ``baseline_s``: a task without a runtime env (the worker start-up floor).

The package index must be reachable; the result records the pip list, the
backend's version and the machine's load average before each round.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
RAY_PYTHON = "/tmp/ray-venv/bin/python"


def _child(backend: str, packages: list[str]) -> dict[str, float | str]:
    if backend == "ember":
        import ember as ray
    else:
        import ray  # type: ignore[no-redef]
    ray.init(num_cpus=2)
    try:
        mods = [p.split("==")[0].replace("-", "_") for p in packages]

        @ray.remote
        def use() -> str:
            import importlib

            for m in mods:
                importlib.import_module(m)
            return "ok"

        def timed(env: dict | None) -> float:
            opts = {"runtime_env": env} if env else {}
            t0 = time.perf_counter()
            ray.get(
                use.options(**opts).remote() if opts else plain.remote(), timeout=900
            )
            return time.perf_counter() - t0

        @ray.remote
        def plain() -> str:
            return "ok"

        out: dict[str, float | str] = {"version": ray.__version__}
        out["baseline_s"] = timed(None)
        env = {"pip": list(packages)}
        out["first_s"] = timed(env)
        out["cached_new_worker_s"] = timed({**env, "env_vars": {"BENCH_OTHER": "1"}})
        out["warm_s"] = timed(env)
        return out
    finally:
        ray.shutdown()


def _run_child(backend: str, packages: list[str]) -> dict[str, object]:
    python = sys.executable if backend == "ember" else RAY_PYTHON
    env = dict(os.environ)
    if backend == "ember":
        env["PYTHONPATH"] = os.path.join(os.path.dirname(HERE), "src")
    with tempfile.TemporaryDirectory(prefix="bench-renv") as tmp:
        if backend == "ember":
            env["XDG_RUNTIME_DIR"] = tmp  # a fresh runtime folder: no cached envs
        proc = subprocess.run(
            [python, __file__, "--child", backend, "--packages", ",".join(packages)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RENV ")]
    if proc.returncode or not lines:
        return {"error": (proc.stderr or proc.stdout)[-2000:]}
    return dict(json.loads(lines[-1][5:]))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--child", choices=["ember", "ray"])
    p.add_argument("--packages", default="pyjokes")
    p.add_argument("--backends", default="ember,ray")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    packages = [x for x in args.packages.split(",") if x]
    if args.child:
        print("RENV " + json.dumps(_child(args.child, packages)), flush=True)
        return
    backends = [b for b in args.backends.split(",") if b]
    if "ray" in backends and not os.path.exists(RAY_PYTHON):
        backends.remove("ray")
    rounds: list[dict[str, object]] = []
    for r in range(args.rounds):
        for b in backends:
            load = os.getloadavg()[0]
            rounds.append(
                {"round": r, "backend": b, "load": load, **_run_child(b, packages)}
            )
    figures = ("baseline_s", "first_s", "cached_new_worker_s", "warm_s")
    medians = {
        b: {
            f: statistics.median(
                [float(x[f]) for x in rounds if x["backend"] == b and f in x]  # type: ignore[arg-type]
            )
            for f in figures
            if any(x["backend"] == b and f in x for x in rounds)
        }
        for b in backends
    }
    print(
        json.dumps(
            {"packages": packages, "medians": medians, "rounds": rounds}, indent=2
        )
    )


if __name__ == "__main__":
    main()
