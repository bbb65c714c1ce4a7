"""Tasks/s and driver memory as the number of pending tasks grows.

For each N, one fresh driver process per backend:

1. start a cluster (``num_cpus=2``) and a gate: an actor method that returns
   only when told to, so every task that takes its result stays pending;
2. submit N tasks ``f.remote(gate_ref)`` and record the submission rate and
   the driver's RSS growth per pending task (memory held for each queued task
   by the driver, where the pending tasks of a job live in both engines);
3. open the gate, ``get`` every result and record the drain rate (submission
   to last result, tasks/s) and the RSS left afterwards (refs dropped).

Usage::

    python bench/scaling.py                      # ember 1k..1M, ray 1k..100k
    python bench/scaling.py --sizes 1000,10000 --backends ember
    python bench/scaling.py --ray-max 1000000    # also Ray at 1M (slow)
    python bench/scaling.py --json bench/results/scaling.json --markdown

One backend/size pair runs per subprocess, so an engine's leftovers never
colour the next figure.  Ray at 1M pending tasks takes many minutes on two
cores, hence ``--ray-max`` (default 100k).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_RAY_PYTHON = "/tmp/ray-venv/bin/python"
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)


def _rss_mib() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def measure(backend: str, n: int) -> dict[str, Any]:
    """One size on one backend, in this process."""
    if backend == "ember":
        import ember as ray
    else:
        import ray  # type: ignore[no-redef]

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:

        @ray.remote
        class Gate:
            def __init__(self) -> None:
                import threading

                self.ev = threading.Event()

            def wait(self) -> int:
                self.ev.wait()
                return 1

            def open(self) -> None:
                self.ev.set()

            def ping(self) -> None:
                pass

        @ray.remote
        def f(x: int) -> int:
            return x

        # warm up: a worker and the function definition exist before measuring
        ray.get([f.remote(1) for _ in range(10)])
        gate = Gate.options(max_concurrency=2).remote()
        ray.get(gate.ping.remote())
        gate_ref = gate.wait.remote()
        gc.collect()
        rss0 = _rss_mib()
        t0 = time.perf_counter()
        refs = [f.remote(gate_ref) for _ in range(n)]
        t_submit = time.perf_counter() - t0
        ready, _ = ray.wait(refs[:1], timeout=0)
        assert not ready, "a task ran before the gate opened"
        rss_pending = _rss_mib()
        t1 = time.perf_counter()
        ray.get(gate.open.remote())
        out = ray.get(refs)
        t_drain = time.perf_counter() - t1
        assert len(out) == n
        assert out[0] == out[-1] == 1
        del out, refs
        gc.collect()
        rss_after = _rss_mib()
        return {
            "backend": backend,
            "pending": n,
            "submit_per_s": n / t_submit,
            "drain_per_s": n / t_drain,
            "total_s": t_submit + t_drain,
            "rss_before_mib": rss0,
            "rss_pending_mib": rss_pending,
            "rss_after_mib": rss_after,
            "kib_per_pending_task": (rss_pending - rss0) * 1024 / n,
        }
    finally:
        ray.shutdown()


def _child(backend: str, n: int) -> None:
    print(json.dumps(measure(backend, n)), flush=True)


def _run_one(python: str, backend: str, n: int, timeout: float) -> dict[str, Any]:
    env = dict(os.environ)
    if backend == "ember":
        env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("RAY_DEDUP_LOGS", "0")
    cmd = [python, str(Path(__file__).resolve()), "--child", backend, str(n)]
    try:
        p = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {
            "backend": backend,
            "pending": n,
            "error": f"timed out after {timeout}s",
        }
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"backend": backend, "pending": n, "error": " | ".join(tail)}


def _fmt(rows: list[dict[str, Any]], markdown: bool) -> str:
    head = [
        "pending tasks",
        "backend",
        "submit tasks/s",
        "drain tasks/s",
        "driver RSS / pending task (KiB)",
        "driver RSS pending (MiB)",
        "driver RSS after (MiB)",
    ]
    lines = []
    for r in rows:
        if "error" in r:
            lines.append([f"{r['pending']:,}", r["backend"], "ERR: " + r["error"][:60]])
            continue
        lines.append(
            [
                f"{r['pending']:,}",
                r["backend"],
                f"{r['submit_per_s']:,.0f}",
                f"{r['drain_per_s']:,.0f}",
                f"{r['kib_per_pending_task']:.2f}",
                f"{r['rss_pending_mib']:,.0f}",
                f"{r['rss_after_mib']:,.0f}",
            ]
        )
    if markdown:
        out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        out += ["| " + " | ".join(line) + " |" for line in lines]
        return "\n".join(out)
    return "\n".join(["\t".join(head)] + ["\t".join(line) for line in lines])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--child", nargs=2, metavar=("BACKEND", "N"), help=argparse.SUPPRESS
    )
    ap.add_argument("--sizes", default=",".join(str(s) for s in DEFAULT_SIZES))
    ap.add_argument("--backends", default="ember,ray")
    ap.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    ap.add_argument("--ember-python", default=sys.executable)
    ap.add_argument("--ray-max", type=int, default=100_000)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--json")
    ap.add_argument("--markdown", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]))
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    backends = args.backends.split(",")
    if "ray" in backends and not Path(args.ray_python).exists():
        print(f"no Ray at {args.ray_python}: running ember only", file=sys.stderr)
        backends = [b for b in backends if b != "ray"]
    rows = []
    for n in sizes:
        for b in backends:
            if b == "ray" and n > args.ray_max:
                continue
            py = args.ray_python if b == "ray" else args.ember_python
            r = _run_one(py, b, n, args.timeout)
            print(json.dumps(r), file=sys.stderr, flush=True)
            rows.append(r)
    print(_fmt(rows, args.markdown))
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": rows}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
