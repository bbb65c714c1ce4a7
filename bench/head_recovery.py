"""How long a cluster needs to serve again after ``kill -9`` of its control service.

ember only: Ray without an external Redis cannot recover its head at all.
Starts ``ember start --head`` (2 CPUs) under a private root, runs a driver
that keeps calling a task and an actor, kills the control service (the
supervisor's child) with SIGKILL and measures, per round:

- ``serving_s``: from the kill until a new control service answers
  ``control.get_cluster_status``;
- ``node_back_s``: until the head's node is registered again;
- ``driver_stall_s``: the longest gap between two of the driver's completed
  task+actor round trips around the kill (tasks and actor calls do not need
  the control service, so this stays near the normal round-trip time);
- ``new_actor_s``: until a new actor created by the driver after the kill
  answers (that needs the control service).

Usage: ``python bench/head_recovery.py [--rounds 5] [--json OUT]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from typing import Any

import click
import psutil

from ember.cli import cluster_client

CLI = [sys.executable, "-m", "ember.cli.main"]

DRIVER = textwrap.dedent(
    """
    import os, sys, threading, time, ember as ray
    ray.init(address="auto")

    @ray.remote
    def f(x):
        return x

    @ray.remote
    class A:
        def ping(self):
            return 1

    a = A.remote()
    ray.get(a.ping.remote())
    stop, mark = sys.argv[1], sys.argv[2]
    created = []

    def create_after_kill():
        while not os.path.exists(mark):
            time.sleep(0.001)
        t0 = time.monotonic()
        b = A.remote()
        ray.get(b.ping.remote(), timeout=120)
        created.append(time.monotonic() - t0)

    t = threading.Thread(target=create_after_kill)
    t.start()
    last, worst, i = time.monotonic(), 0.0, 0
    while not os.path.exists(stop):
        ray.get(f.remote(i)); ray.get(a.ping.remote())
        now = time.monotonic()
        if os.path.exists(mark):
            worst = max(worst, now - last)
        last, i = now, i + 1
        if i == 20:
            print("RUNNING", flush=True)
    t.join()
    print("STALL", worst, created[0], flush=True)
    """
)


def env_for(root: str) -> dict[str, str]:
    env = dict(os.environ)
    for var in ("EMBER_AUTH_TOKEN", "EMBER_ADDRESS", "RAY_ADDRESS", "XDG_RUNTIME_DIR"):
        env.pop(var, None)
    env.update(HOME=os.path.join(root, "home"), TMPDIR=root, PYTHONUNBUFFERED="1")
    return env


def control_child(root: str) -> psutil.Process | None:
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            cmd = p.info["cmdline"] or []
            env = p.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if (
            env.get("TMPDIR") == root
            and "ember.control" in cmd
            and "--supervise" not in cmd
        ):
            return p
    return None


def status_ok(root: str) -> tuple[bool, bool]:
    """Whether the control service answers, and whether it lists a live node."""
    with open(os.path.join(root, f"ember-{os.geteuid()}", "current_cluster.json")) as f:
        rec = json.load(f)
    try:
        st = cluster_client.get_status(
            rec["control_address"], rec["token"], find_tls=False
        )
    except click.ClickException:
        return False, False
    return True, any(n.alive for n in st.nodes)


def one_round() -> dict[str, float]:
    root = tempfile.mkdtemp(prefix="embh", dir="/tmp")
    os.makedirs(os.path.join(root, "home"))
    env = env_for(root)
    try:
        subprocess.run(
            [*CLI, "start", "--head", "--port", "0", "--num-cpus", "2",
             "--node-ip-address", "127.0.0.1"],
            env=env, check=True, capture_output=True,
        )  # fmt: skip
        path = os.path.join(root, "driver.py")
        with open(path, "w") as f:
            f.write(DRIVER)
        stop, mark = os.path.join(root, "stop"), os.path.join(root, "mark")
        drv = subprocess.Popen(
            [sys.executable, path, stop, mark],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert drv.stdout is not None
        while "RUNNING" not in drv.stdout.readline():
            pass
        child = control_child(root)
        assert child is not None
        open(mark, "w").close()
        t0 = time.monotonic()
        child.send_signal(signal.SIGKILL)
        serving = node_back = 0.0
        while not node_back:
            ok, node = status_ok(root)
            now = time.monotonic() - t0
            if ok and not serving:
                serving = now
            if ok and node:
                node_back = now
        open(stop, "w").close()
        out, _ = drv.communicate(timeout=180)
        parts = next(ln for ln in out.splitlines() if ln.startswith("STALL")).split()
        return {
            "serving_s": serving,
            "node_back_s": node_back,
            "driver_stall_s": float(parts[1]),
            "new_actor_s": float(parts[2]),
        }
    finally:
        subprocess.run([*CLI, "stop", "--force"], env=env, capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    rounds = [one_round() for _ in range(args.rounds)]
    summary: dict[str, Any] = {
        k: {
            "median": statistics.median(r[k] for r in rounds),
            "max": max(r[k] for r in rounds),
        }
        for k in rounds[0]
    }
    for k, v in summary.items():
        print(f"{k:16s} median {v['median']:.3f} s   max {v['max']:.3f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"rounds": rounds, "summary": summary}, f, indent=1)


if __name__ == "__main__":
    main()
