"""Ray's scalability envelope, measured on ember with simulated nodes (issue 17).

For each N (default 300, 1,000, 3,000) the harness starts a real head (the
control service and one real node daemon, ``ember.cluster_utils.Cluster``),
N simulated nodes (``bench/sim``: processes that speak the real node
protocol, ``--per-process`` nodes each) and a driver, then measures:

* the control service's CPU (ms per second per node, over a ``--window-s``
  window of steady state) and RSS per node (psutil on its pid);
* membership propagation: a node registers; seconds until another node's
  cluster view holds it;
* dead-node notice: a simulated node dies (its connections drop); seconds
  until a client of the control service is told (``worker.node_died``);
* scheduling latency of a task that must spill to a simulated node (median
  of fresh scheduling keys, so each is a new lease);
* ``ember status`` wall time (a CLI process);
* actors placed on simulated nodes (creation rate, control memory per actor),
  tasks simultaneously "running" on simulated nodes, placement groups created
  and removed.

Once per run (they do not depend on N): tasks queued from one driver (driver
memory per queued task, ``bench/scaling.py``), 10,000 objects in one ``get``
and 10,000 returns from one task, ember and Ray 2.60 (``/tmp/ray-venv``) the
same way in the same run.

The slope check: per figure, the exponent ``log(f(N2)/f(N1)) / log(N2/N1)``
between consecutive sizes against what it should be (0 for per-node figures
and per-task/actor latencies; 1 for ``ember status``, which prints every node,
and for propagation and the dead-node notice: the watching node and driver
registered last, so they hear a broadcast to N peers after the other N); more
than 0.5 above is flagged SUPER-LINEAR.

Usage::

    python bench/scale.py                              # 300, 1000, 3000
    python bench/scale.py --sizes 20 --per-process 20 --no-ray --quick
    python bench/scale.py --json bench/results/scale.json
    EMBER_CONTROL_PROFILE=/tmp/scale-control.prof python bench/scale.py --sizes 1000
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # appended: bench/profile.py must not shadow the stdlib's
    sys.path.append(str(HERE))

from sim.probes import PROBE_LABEL, Simulators, Watcher, cpu_rss  # noqa: E402

RAY_PYTHON = "/tmp/ray-venv/bin/python"
#: resources of every simulated node ("sim" marks them; 5 slots x 3,000 = 15,000)
SIM_RESOURCES = {"CPU": 5.0, "sim": 5.0}

#: (key, dimension, Ray's published figure, unit, expected exponent in N or None)
FIGURES: list[tuple[str, str, str, str, float | None]] = [
    ("nodes", "nodes in one cluster", "2,000+", "nodes", None),
    ("register_nodes_per_s", "node registrations", "-", "nodes/s", None),
    ("control_cpu_ms_per_s_per_node", "control CPU per node", "-", "ms/s", 0.0),
    ("control_rss_kib_per_node", "control memory per node", "-", "KiB", 0.0),
    ("propagation_ms", "membership propagation", "-", "ms", 1.0),
    ("death_notice_ms", "driver learns of a dead node", "-", "ms", 1.0),
    ("remote_schedule_ms", "task spilled to a remote node", "-", "ms", 0.0),
    ("status_s", "`ember status`", "-", "s", 1.0),
    ("actors", "actors alive (simulated nodes)", "20,000+", "actors", None),
    ("actor_create_ms", "actor creation, per actor", "-", "ms", 0.0),
    ("control_kib_per_actor", "control memory per actor", "-", "KiB", 0.0),
    ("running_tasks", "simultaneously running tasks", "15,000+", "tasks", None),
    ("placement_groups", "placement groups created+removed", "1,000+", "groups", None),
    ("pg_create_remove_ms", "placement group create+remove", "-", "ms", 0.0),
]
FIXED: list[tuple[str, str, str, str]] = [
    ("queued_tasks", "tasks queued from one driver", "1,000,000+", "tasks"),
    ("kib_per_queued_task", "driver memory per queued task", "(<= 1.5)", "KiB"),
    ("get_10k_s", "10,000 objects in one get", "10,000+", "s"),
    ("returns_10k_s", "10,000 returns from one task", "10,000+", "s"),
]


def _median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def measure_n(n: int, args: argparse.Namespace) -> dict[str, Any]:
    """Every per-N figure for N simulated nodes, in this process."""
    import ember
    from ember.cluster_utils import Cluster
    from ember.util.placement_group import placement_group, remove_placement_group

    out: dict[str, Any] = {"n": n}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    assert cluster._control is not None
    control_pid = cluster._control.proc.pid
    sims = Simulators(cluster.control_address, cluster.token, SIM_RESOURCES)
    watcher = Watcher(cluster.control_address, cluster.token)
    try:
        _, rss0 = cpu_rss(control_pid)
        took = sims.start(n, args.per_process)
        out["nodes"] = sims.nodes
        out["register_nodes_per_s"] = n / took
        out["registered"] = _alive_simulated(cluster)
        watcher.start()
        time.sleep(args.settle_s)  # steady state: every node has heartbeated
        cpu_a, _ = cpu_rss(control_pid)
        time.sleep(args.window_s)
        cpu_b, rss1 = cpu_rss(control_pid)
        out["control_cpu_ms_per_s_per_node"] = (cpu_b - cpu_a) / args.window_s / n * 1e3
        out["control_rss_kib_per_node"] = (rss1 - rss0) / n / 1024
        out["propagation_ms"] = _median_ms([watcher.join_seen_s() for _ in range(3)])
        deaths = []
        for i in range(3):
            node_hex = sims.node_ids[0][i]
            at = sims.ask(0, f"kill {i}")["at"]
            deaths.append(watcher.wait_death(bytes.fromhex(node_hex), 60) - at)
        out["death_notice_ms"] = _median_ms(deaths)
        out["alive_after_kills"] = _alive_simulated(cluster)

        cluster.connect()

        @ember.remote(resources={"sim": 1})
        def noop() -> None:
            return None

        ember.get(noop.remote(), timeout=120)
        lat = []
        for i in range(20):  # a fresh scheduling key each: a new lease each time
            t0 = time.perf_counter()
            ember.get(
                noop.options(resources={"sim": 0.5 + i / 1000}).remote(), timeout=60
            )
            lat.append(time.perf_counter() - t0)
        out["remote_schedule_ms"] = _median_ms(lat)
        out["status_s"] = _status_time(cluster)

        def groups() -> None:
            t0 = time.perf_counter()
            pgs = [placement_group([{"sim": 0.001}]) for _ in range(args.pgs)]
            ember.get([pg.ready() for pg in pgs], timeout=args.phase_timeout_s)
            for pg in pgs:
                remove_placement_group(pg)
            out["placement_groups"] = args.pgs
            out["pg_create_remove_ms"] = (time.perf_counter() - t0) / args.pgs * 1e3

        # a dimension that fails is reported as such; the others still run
        for name, phase, wanted in (
            ("actors", lambda: _actors(ember, n, args, control_pid, out), args.actors),
            (
                "running_tasks",
                lambda: _running(ember, noop, sims, n, args, out),
                args.running,
            ),
            ("placement_groups", groups, args.pgs),
        ):
            if wanted <= 0:  # --actors 0 etc.: this dimension is skipped
                continue
            try:
                phase()
            except Exception as exc:  # a figure that could not be taken
                out[f"{name}_error"] = f"{type(exc).__name__}: {exc}"[:300]
                sims.ask_all("release")
    finally:
        watcher.close()
        sims.stop()
        cluster.shutdown()
    return out


def _alive_simulated(cluster: Any) -> int:
    """How many simulated nodes the control service holds alive (not the probes)."""
    import asyncio

    from sim.node import SIM_LABEL

    nodes = asyncio.run(cluster._get_nodes())
    return sum(
        1
        for n in nodes
        if n.alive and n.labels.get(SIM_LABEL) == "1" and PROBE_LABEL not in n.labels
    )


def _status_time(cluster: Any) -> float:
    env = dict(os.environ, EMBER_AUTH_TOKEN=cluster.token)
    code = "import sys; from ember.cli.main import main; sys.argv[0]='ember'; main()"
    t0 = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", code, "status", "--address", cluster.address],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"ember status failed: {p.stderr[-500:]}")
    return took


def _actors(
    ember: Any, n: int, args: argparse.Namespace, control_pid: int, out: dict[str, Any]
) -> None:
    @ember.remote(resources={"sim": 0.001})
    class Idle:
        def ping(self) -> None:
            return None

    count = min(args.actors, n * args.actors_per_node)
    _, rss0 = cpu_rss(control_pid)
    t0 = time.perf_counter()
    handles: list[Any] = []
    while len(handles) < count:  # in batches: a burst of thousands of handshakes
        batch = [
            Idle.remote() for _ in range(min(args.actor_batch, count - len(handles)))
        ]
        ember.get([h.ping.remote() for h in batch], timeout=args.phase_timeout_s)
        handles += batch
    took = time.perf_counter() - t0
    _, rss1 = cpu_rss(control_pid)
    out["actors"] = count
    out["actor_create_ms"] = took / count * 1e3
    out["control_kib_per_actor"] = (rss1 - rss0) / count / 1024
    for h in handles:
        ember.kill(h)
    del handles


def _running(
    ember: Any,
    noop: Any,
    sims: Simulators,
    n: int,
    args: argparse.Namespace,
    out: dict[str, Any],
) -> None:
    want = min(args.running, n * int(SIM_RESOURCES["sim"]))
    sims.ask_all("hold")
    refs = [noop.remote() for _ in range(want)]
    best, last_change = 0, time.monotonic()
    while best < want and time.monotonic() - last_change < args.stall_s:
        now = sims.total("running")
        if now > best:
            best, last_change = now, time.monotonic()
        time.sleep(0.2)  # polling other processes' counters, with a deadline
    sims.ask_all("release")
    out["running_tasks"] = best
    ember.get(refs, timeout=args.phase_timeout_s)


# -- once per run: queued tasks and objects, ember and Ray ------------------------------
_OBJECTS_CHILD = r"""
import json, sys, time
backend = sys.argv[1]
if backend == "ember":
    import ember as ray
else:
    import ray
ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
refs = [ray.put(i) for i in range(10_000)]
t0 = time.perf_counter(); ray.get(refs); get_s = time.perf_counter() - t0
@ray.remote(num_returns=10_000)
def many():
    return list(range(10_000))
out = {"get_10k_s": get_s}
try:
    ray.get(many.remote()[-1])
    t0 = time.perf_counter(); ray.get(many.remote())
    out["returns_10k_s"] = time.perf_counter() - t0
except Exception as exc:
    out["error"] = f"10,000 returns: {type(exc).__name__}: {str(exc)[:200]}"
ray.shutdown()
print(json.dumps(out))
"""


def _child_json(python: str, code: list[str], timeout: float) -> dict[str, Any]:
    env = dict(os.environ, RAY_DEDUP_LOGS="0")
    try:
        p = subprocess.run(
            [python, *code], env=env, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in reversed(p.stdout.splitlines()):
        if line.startswith("{"):
            out: dict[str, Any] = json.loads(line)
            return out
    return {"error": " | ".join((p.stderr or p.stdout).strip().splitlines()[-2:])}


def measure_fixed(backend: str, args: argparse.Namespace) -> dict[str, Any]:
    import scaling

    python = sys.executable if backend == "ember" else args.ray_python
    out = _child_json(python, ["-c", _OBJECTS_CHILD, backend], 600)
    q = scaling._run_one(python, backend, args.queued, 1800)
    out["queued_tasks"] = q.get("pending", args.queued)
    if "kib_per_pending_task" in q:
        out["kib_per_queued_task"] = q["kib_per_pending_task"]
    elif "error" in q:
        out.setdefault("error", q["error"])
    return out


# -- the table and the slope check ---------------------------------------------------------
def slopes(rows: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Per figure with an expected exponent: the measured exponent between sizes."""
    out: dict[str, list[float]] = {}
    for key, _, _, _, _ in FIGURES:
        exps = []
        for a, b in itertools.pairwise(rows):
            fa, fb = a.get(key), b.get(key)
            if fa and fb and fa > 0 and fb > 0 and b["n"] != a["n"]:
                exps.append(math.log(fb / fa) / math.log(b["n"] / a["n"]))
        out[key] = exps
    return out


def flagged(rows: list[dict[str, Any]], tolerance: float = 0.5) -> list[str]:
    """The figures whose cost grows faster than they should with N."""
    exps = slopes(rows)
    return [
        key
        for key, _, _, _, expected in FIGURES
        if expected is not None and any(e > expected + tolerance for e in exps[key])
    ]


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:,.3g}" if abs(v) < 100 else f"{v:,.0f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def table(rows: list[dict[str, Any]], fixed: dict[str, dict[str, Any]]) -> str:
    sizes = [r["n"] for r in rows]
    exps = slopes(rows)
    bad = set(flagged(rows))
    head = [
        "dimension",
        "unit",
        *[f"ember N={n}" for n in sizes],
        "Ray published",
        "exponent (want)",
        "",
    ]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for key, label, published, unit, expected in FIGURES:
        e = exps.get(key) or []
        slope = ", ".join(f"{x:.2f}" for x in e) if e else "-"
        want = "-" if expected is None else f"{expected:g}"
        cells = [
            label,
            unit,
            *[_fmt(r.get(key)) for r in rows],
            published,
            f"{slope} ({want})",
            "SUPER-LINEAR" if key in bad else "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if fixed:
        lines += [
            "",
            "| dimension | unit | ember | Ray 2.60 here | Ray published |",
            "|---|---|---|---|---|",
        ]
        e, r = fixed.get("ember", {}), fixed.get("ray", {})
        for key, label, published, unit in FIXED:
            lines.append(
                f"| {label} | {unit} | {_fmt(e.get(key))} | {_fmt(r.get(key))} "
                f"| {published} |"
            )
        for name, got in fixed.items():
            if "error" in got:
                lines.append(f"\n{name}: {got['error']}")
    for r in rows:
        for k, v in r.items():
            if k.endswith("_error"):
                lines.append(f"\nN={r['n']} {k[:-6]}: {v}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--sizes", default="300,1000,3000")
    p.add_argument("--per-process", type=int, default=500)
    p.add_argument("--window-s", type=float, default=5.0)
    p.add_argument("--settle-s", type=float, default=2.0)
    p.add_argument("--actors", type=int, default=3000, help="actors at most per N")
    p.add_argument("--actors-per-node", type=int, default=1)
    p.add_argument("--actor-batch", type=int, default=100)
    p.add_argument("--phase-timeout-s", type=float, default=300.0)
    p.add_argument("--running", type=int, default=15_000)
    p.add_argument("--stall-s", type=float, default=30.0)
    p.add_argument("--pgs", type=int, default=1000)
    p.add_argument("--queued", type=int, default=100_000)
    p.add_argument("--no-ray", action="store_true", help="skip Ray's figures")
    p.add_argument("--no-fixed", action="store_true", help="only the per-N figures")
    p.add_argument("--ray-python", default=RAY_PYTHON)
    p.add_argument("--json", default="")
    args = p.parse_args(argv)
    from ember.common.fdlimit import raise_nofile_limit

    raise_nofile_limit()  # the driver holds a connection per leased worker
    rows = []
    for n in [int(s) for s in args.sizes.split(",") if s.strip()]:
        row = measure_n(n, args)
        print(json.dumps(row), flush=True)
        rows.append(row)
    fixed: dict[str, dict[str, Any]] = {}
    if not args.no_fixed:
        fixed["ember"] = measure_fixed("ember", args)
        if not args.no_ray and os.path.exists(args.ray_python):
            fixed["ray"] = measure_fixed("ray", args)
    print(table(rows, fixed))
    bad = flagged(rows)
    if bad:
        print("\nsuper-linear:", ", ".join(bad))
    if args.json:
        Path(args.json).write_text(
            json.dumps({"rows": rows, "fixed": fixed, "flagged": bad}, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
