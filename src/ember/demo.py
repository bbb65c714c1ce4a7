"""``python -m ember.demo``: the seed programs on an embedded local cluster, with a report.

The seed programs (``ember/examples``) run unchanged as separate driver
processes that join this process's local cluster (``EMBER_ADDRESS=auto``).
Only the fake_NN program is scaled (its ``task_num``) so the demo stays short.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from importlib import resources

import ember

EXAMPLES = "ember.examples"


def _source(name: str) -> str:
    return resources.files(EXAMPLES).joinpath(name).read_text(encoding="utf-8")


def _run(
    name: str, source: str | None = None, timeout: float = 600
) -> tuple[str, float]:
    """Run an example as its own driver joined to our cluster; return (stdout, seconds)."""
    src = source if source is not None else _source(name)
    with tempfile.NamedTemporaryFile(
        "w", suffix=f"_{name}", delete=False, encoding="utf-8"
    ) as f:
        f.write(src)
        path = f.name
    env = dict(os.environ, EMBER_ADDRESS="auto", PYTHONUNBUFFERED="1")
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, path],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        os.unlink(path)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(
            f"{name} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}"
        )
    return proc.stdout, elapsed


def _float(pattern: str, text: str) -> float:
    m = re.search(pattern, text)
    if m is None:
        raise RuntimeError(f"could not find {pattern!r} in output:\n{text[-2000:]}")
    return float(m.group(1))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.demo")
    p.add_argument("--fake-nn-tasks", type=int, default=2000)
    p.add_argument("--skip-serial", action="store_true")
    a = p.parse_args()

    t0 = time.perf_counter()
    ember.init(log_to_driver=False)
    init_s = time.perf_counter() - t0
    from ember.api.init import publish_local_cluster

    publish_local_cluster()
    cpus = ember.cluster_resources().get("CPU", 0)
    print(
        f"ember {ember.__version__}: local cluster with {cpus:g} CPUs started in "
        f"{init_s * 1000:.0f} ms\n"
    )
    rows: list[tuple[str, str]] = []
    try:
        src = _source("sleep_tasks.py")
        if a.skip_serial:
            src = src.replace("    run()\n", "")
        out, _ = _run("sleep_tasks.py", src)
        par = _float(r"run with ray cost time: ([0-9.]+)", out)
        ideal = 100 * 0.1 / max(cpus, 1)
        line = f"{par:.2f} s (ideal {ideal:.2f} s with {cpus:g} CPUs)"
        if not a.skip_serial:
            ser = _float(r"run cost time: ([0-9.]+)", out)
            line += f"; serially {ser:.2f} s; speed-up {ser / par:.1f}x"
        rows.append(("100 x sleep(0.1) tasks", line))

        out, _ = _run("counters.py")
        rows.append(("4 Counter actors x 3 increments", out.strip().splitlines()[-1]))

        src = _source("fake_nn_actors.py").replace(
            "task_num = 100000", f"task_num = {a.fake_nn_tasks}"
        )
        out, _ = _run("fake_nn_actors.py", src)
        used = _float(r"Time used: ([0-9.]+) seconds", out)
        rows.append(
            (f"fake_NN inference, 10 actors, {a.fake_nn_tasks} inputs", f"{used:.2f} s")
        )

        out, _ = _run("forward_pass.py")
        fw = _float(r"耗时: ([0-9.]+)", out)
        rows.append(
            ("forward-pass tasks, weights as argument (20 batches)", f"{fw:.2f} s")
        )
    finally:
        ember.shutdown()
    width = max(len(r[0]) for r in rows)
    print("workload".ljust(width), " result")
    print("-" * width, " ------")
    for name, result in rows:
        print(name.ljust(width), "", result)


if __name__ == "__main__":
    main()
