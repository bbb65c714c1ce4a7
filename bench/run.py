"""Run the benchmark workloads on ember and Ray, alternately, and compare.

Usage::

    python bench/run.py [--ray-python /tmp/ray-venv/bin/python]
                        [--ember-python PY] [--rounds 3]
                        [--json bench/results/latest.json] [--only A,B]
                        [--quick] [--markdown] [--backends ember,ray]
    python bench/run.py --report bench/results/latest.json [--markdown]

Each round runs ``workloads.py`` once per backend, each in a fresh subprocess
(ember, ray, ember, ray, ... so that drift hits both), then the per-figure
median over rounds is reported.  In the ratio column ``> 1`` always means ember
is better: ember/ray for throughputs, ray/ember for times and sizes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import multinode  # bench/ is sys.path[0] when run as a script

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WORKLOADS = HERE / "workloads.py"
DEFAULT_RAY_PYTHON = "/tmp/ray-venv/bin/python"
CEILINGS = (
    "memcpy_gbps",
    "memcpy_2t_gbps",
    "socket_rtt_us",
    "pool_apply_per_s",
    "tcp_stream_gbps",
)


# --------------------------------------------------------------------------- #
# running
# --------------------------------------------------------------------------- #


def _git(*args: str) -> str | None:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "runner_python": platform.python_version(),
        "loadavg_at_start": list(os.getloadavg()),
    }
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["mem_total_gib"] = round(int(line.split()[1]) / 1024**2, 1)
    sha = _git("rev-parse", "HEAD")
    dirty = _git("status", "--porcelain", "--", "src")
    info["ember_git_sha"] = (sha or "?") + ("-dirty" if dirty else "")
    return info


def _ember_version_from_source() -> str | None:
    text = ""
    with contextlib.suppress(OSError):
        text = (REPO / "src" / "ember" / "_version.py").read_text()
    for line in text.splitlines():
        if line.startswith("__version__"):
            return line.split("=", 1)[1].strip().strip("\"'")
    return None


def _kill_group(pgid: int) -> None:
    """Kill what is left of the process group we started (stray daemons)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def run_once(
    backend: str,
    python: str,
    args: argparse.Namespace,
    only: list[str] | None,
    *,
    extra: list[str] | None = None,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    fd, out_path = tempfile.mkstemp(prefix=f"bench-{backend}-", suffix=".json")
    os.close(fd)
    os.unlink(out_path)
    cmd = [
        python,
        str(WORKLOADS),
        "--backend",
        backend,
        "--json",
        out_path,
        *(["--timeout", str(args.timeout)] if args.timeout else []),
        *(extra or []),
    ]
    if only:
        cmd += ["--only", ",".join(only)]
    if args.quick:
        cmd.append("--quick")
    env = dict(env if env is not None else os.environ)
    if backend == "ember":  # measure the working tree, installed or not
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO / "src"), env.get("PYTHONPATH")) if p
        )
    print(f"--- {backend}: {' '.join(cmd)}", file=sys.stderr, flush=True)
    start = time.time()
    load = list(os.getloadavg())
    proc = subprocess.Popen(cmd, env=env, start_new_session=True)
    try:
        rc = proc.wait(timeout=args.round_timeout)
    except subprocess.TimeoutExpired:
        rc = None
    _kill_group(proc.pid)
    if rc is None:
        proc.wait()
    data: dict[str, Any]
    try:
        with open(out_path) as f:
            data = json.load(f)
        os.unlink(out_path)
    except (OSError, ValueError) as exc:
        data = {
            "backend": backend,
            "results": {},
            "error": f"no results ({type(exc).__name__}: {exc})",
        }
    if rc != 0:
        data.setdefault("error", f"workloads.py exited with {rc}")
    data["wall_s"] = round(time.time() - start, 1)
    data["loadavg_before"] = load
    data["loadavg_after"] = list(os.getloadavg())
    return data


def run_multinode(
    backend: str, python: str, args: argparse.Namespace, names: list[str]
) -> dict[str, Any]:
    """Start the backend's 2-node cluster, run the mn_* figures, always stop it."""
    print(f"--- {backend}: starting a 2-node cluster", file=sys.stderr, flush=True)
    start = time.time()
    load = list(os.getloadavg())
    cluster = multinode.Cluster(backend, python)
    data: dict[str, Any] | None = None
    try:
        cluster.start()
        data = run_once(
            backend, python, args, names, extra=["--multinode"], env=cluster.env
        )
    except multinode.ClusterError as exc:
        msg = f"ClusterError: {exc}"
        data = {
            "backend": backend,
            "results": {n: {"error": msg} for n in names},
            "error": msg,
            "wall_s": round(time.time() - start, 1),
            "loadavg_before": load,
        }
    finally:
        note = cluster.stop()
        print(
            f"--- {backend}: cluster stopped "
            f"({note.get('stop') or note.get('stop_error')})",
            file=sys.stderr,
            flush=True,
        )
    res = data.setdefault("results", {})
    why = data.get("watchdog") or data.get("error") or "?"
    for n in names:  # a watchdog exit skips the rest: say so, per figure
        res.setdefault(n, {"error": f"not run: {why}"})
    data["multinode"] = True
    data["cluster"] = note
    if note.get("leftovers_killed"):
        data.setdefault(
            "error", f"leftover processes killed: {note['leftovers_killed']}"
        )
    return data


# --------------------------------------------------------------------------- #
# aggregation
# --------------------------------------------------------------------------- #


def aggregate(rounds: list[dict[str, Any]], backend: str) -> dict[str, Any]:
    """Per-figure median of the per-round values of one backend."""
    per: dict[str, list[dict[str, Any]]] = {}
    for rnd in rounds:
        if rnd.get("backend") != backend:
            continue
        for name, res in rnd.get("results", {}).items():
            per.setdefault(name, []).append(res)
    med: dict[str, Any] = {}
    for name, results in per.items():
        ok = [r for r in results if "value" in r]
        if not ok:
            med[name] = {"error": results[0].get("error", "?")}
            continue
        first = ok[0]
        med[name] = {
            "value": statistics.median(r["value"] for r in ok),
            "unit": first["unit"],
            "better": first["better"],
            "rounds_ok": len(ok),
            "rounds": len(results),
            "note": first.get("note", ""),
        }
    return med


def _ceiling(medians: dict[str, dict[str, Any]], name: str) -> float | None:
    vals = [m[name]["value"] for m in medians.values() if "value" in m.get(name, {})]
    return statistics.median(vals) if vals else None


# --------------------------------------------------------------------------- #
# reporting
# --------------------------------------------------------------------------- #


def fmt(v: float | None) -> str:
    if v is None:
        return "-"
    a = abs(v)
    if float(v).is_integer() and a < 1e6:
        return f"{int(v):,}"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    if a >= 0.01:
        return f"{v:.3f}"
    return f"{v:.2g}"


def _cell(m: dict[str, Any] | None) -> str:
    if m is None:
        return "-"
    if "value" not in m:
        return "ERR"
    return fmt(m["value"])


def build_rows(report: dict[str, Any]) -> tuple[list[list[str]], list[str]]:
    med = report["medians"]
    ember, ray = med.get("ember", {}), med.get("ray", {})
    names = [n for n in report["figure_order"] if n not in CEILINGS]
    rows = []
    for name in names:
        e, r = ember.get(name), ray.get(name)
        ref = next((m for m in (e, r) if m and "value" in m), None)
        unit = ref["unit"] if ref else ""
        ratio = "-"
        if e and r and "value" in e and "value" in r and e["value"] and r["value"]:
            if ref["better"] == "higher":
                ratio = f"{e['value'] / r['value']:.2f}x"
            else:
                ratio = f"{r['value'] / e['value']:.2f}x"
        rows.append([name, unit, _cell(e), _cell(r), ratio])

    notes = []
    memcpy = _ceiling(med, "memcpy_gbps")
    rtt = _ceiling(med, "socket_rtt_us")
    if memcpy is not None or rtt is not None:  # absent in --multinode runs
        notes.append(
            f"ceiling memcpy_gbps = {fmt(memcpy)} GB/s (1 GiB np.copyto, "
            "pre-touched destination)"
        )
        notes.append(
            f"ceiling socket_rtt_us = {fmt(rtt)} us (1-byte Unix socket "
            "ping-pong between 2 processes)"
        )
    if rtt:
        notes.append(
            f"  -> a synchronous round trip can't beat ~{fmt(1e6 / rtt)} per second"
        )
    memcpy2 = _ceiling(med, "memcpy_2t_gbps")
    pool = _ceiling(med, "pool_apply_per_s")
    tcp = _ceiling(med, "tcp_stream_gbps")
    for name, value, what in (
        ("memcpy_2t_gbps", memcpy2, "GB/s (1 GiB np.copyto, 2 threads)"),
        ("pool_apply_per_s", pool, "calls/s (multiprocessing.Pool(1).apply, no-op)"),
        ("tcp_stream_gbps", tcp, "GB/s (1 GiB over loopback TCP, 2 processes)"),
    ):
        if value is not None:
            notes.append(f"ceiling {name} = {fmt(value)} {what}")
    for backend, m in (("ember", ember), ("ray", ray)):
        parts = []
        if memcpy:
            for n in ("put_100mb_gbps", "put_1gb_gbps"):
                if "value" in m.get(n, {}):
                    parts.append(f"{n} {100 * m[n]['value'] / memcpy:.1f}% of memcpy")
        if memcpy2:
            for n in ("put_1gb_gbps",):
                if "value" in m.get(n, {}):
                    pct = 100 * m[n]["value"] / memcpy2
                    parts.append(f"{n} {pct:.1f}% of 2-thread memcpy")
        if rtt:
            for n in ("single_client_tasks_sync", "actor_calls_sync_1_1"):
                if "value" in m.get(n, {}):
                    pct = 100 * m[n]["value"] / (1e6 / rtt)
                    parts.append(f"{n} {pct:.2f}% of 1/RTT")
        if pool:
            for n in ("single_client_tasks_sync", "actor_calls_sync_1_1"):
                if "value" in m.get(n, {}):
                    pct = 100 * m[n]["value"] / pool
                    parts.append(f"{n} {pct:.0f}% of Pool.apply")
        if tcp:
            for n in ("mn_far_to_head_1gb_gbps", "mn_head_to_far_1gb_gbps"):
                if "value" in m.get(n, {}):
                    pct = 100 * m[n]["value"] / tcp
                    parts.append(f"{n} {pct:.0f}% of a TCP stream")
        if parts:
            notes.append(f"% of ceiling ({backend}): " + "; ".join(parts))
    errors = []
    for backend, m in (("ember", ember), ("ray", ray)):
        by_msg: dict[str, list[str]] = {}
        for name, v in m.items():
            if "error" in v:
                msg = v["error"].splitlines()[0][:200]
                by_msg.setdefault(msg, []).append(name)
        for msg, figs in by_msg.items():
            which = ", ".join(figs) if len(figs) <= 3 else f"{len(figs)} figures"
            errors.append(f"{backend} ({which}): {msg}")
    return rows, notes + (["errors:", *("  " + e for e in errors)] if errors else [])


HEADER = ["metric", "unit", "ember", "ray", "ratio (>1 = ember better)"]


def render_text(report: dict[str, Any]) -> str:
    rows, notes = build_rows(report)
    table = [HEADER, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(HEADER))]
    lines = [
        "ratio = ember/ray for throughputs, ray/ember for times and sizes; "
        ">1 means ember is better"
    ]
    for i, row in enumerate(table):
        lines.append(
            "  ".join(
                c.ljust(w) if j < 2 else c.rjust(w)
                for j, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join([*lines, "", *notes, _machine_line(report)])


def render_markdown(report: dict[str, Any]) -> str:
    rows, notes = build_rows(report)
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---", "---:", "---:", "---:"]) + "|",
    ]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    lines += [""] + [f"- {n.strip()}" for n in notes if n.strip() != "errors:"]
    lines.append(f"- {_machine_line(report)}")
    return "\n".join(lines)


def _machine_line(report: dict[str, Any]) -> str:
    m = report["machine"]
    return (
        f"machine: {m.get('cpu_count')} CPUs, {m.get('mem_total_gib')} GiB, "
        f"python {m.get('ember_python') or m.get('ray_python') or m.get('runner_python')}, "
        f"ray {m.get('ray_version')}, ember {m.get('ember_version')} "
        f"({m.get('ember_git_sha')}), rounds {report['rounds_requested']}"
        + (" (quick)" if report.get("quick") else "")
    )


# --------------------------------------------------------------------------- #
# main
# --------------------------------------------------------------------------- #


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ray-python", default=DEFAULT_RAY_PYTHON)
    ap.add_argument("--ember-python", default=sys.executable)
    ap.add_argument(
        "--backends", default="ember,ray", help="comma-separated subset of ember,ray"
    )
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=str(HERE / "results" / "latest.json"))
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--markdown", action="store_true", help="print the table as Markdown"
    )
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="per-workload watchdog inside workloads.py, seconds (default 180; "
        "mn_* figures have their own, see multinode.FIGURES, unless this is given)",
    )
    ap.add_argument(
        "--round-timeout",
        type=float,
        default=1200.0,
        help="kill a backend's round after this many seconds",
    )
    ap.add_argument(
        "--report", metavar="JSON", help="only re-render the table of an earlier run"
    )
    ap.add_argument(
        "--multinode",
        action="store_true",
        help="run the mn_* figures (2-node clusters started through each "
        "backend's CLI) instead of the single-node ones; with --only, any mn_* "
        "name selects them too",
    )
    args = ap.parse_args(argv)

    if args.report:
        with open(args.report) as f:
            report = json.load(f)
        print(render_markdown(report) if args.markdown else render_text(report))
        return 0

    pythons = {"ember": args.ember_python, "ray": args.ray_python}
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    skipped = []
    for b in list(backends):
        if b not in pythons:
            ap.error(f"unknown backend {b!r}")
        if not (os.path.exists(pythons[b]) and os.access(pythons[b], os.X_OK)):
            skipped.append(f"{b}: python {pythons[b]} not found, not run")
            backends.remove(b)
    for s in skipped:
        print(f"NOTE: {s}", file=sys.stderr)
    if not backends:
        print("nothing to run", file=sys.stderr)
        return 1

    # which suites: single-node figures (one process, init()) and/or the
    # multi-node ones (a cluster per backend and round, init(address="auto")).
    single_only: list[str] | None = None
    mn_names: list[str] = []
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        mn_names = [n for n in multinode.FIGURES if n in wanted]
        single_only = [n for n in wanted if n not in multinode.FIGURES]
        unknown = [n for n in single_only if n.startswith("mn_")]
        if unknown:
            ap.error(f"unknown multi-node figure(s): {', '.join(unknown)}")
        run_single = bool(single_only)
    else:
        run_single = not args.multinode
        mn_names = list(multinode.FIGURES) if args.multinode else []

    machine = machine_info()
    raw: list[dict[str, Any]] = []
    for rnd in range(args.rounds):
        for backend in backends:
            print(
                f"=== round {rnd + 1}/{args.rounds}: {backend}",
                file=sys.stderr,
                flush=True,
            )
            runs = []
            if run_single:
                runs.append(run_once(backend, pythons[backend], args, single_only))
            if mn_names:
                runs.append(run_multinode(backend, pythons[backend], args, mn_names))
            for data in runs:
                data["round"] = rnd + 1
                raw.append(data)
                if data.get("backend_version"):
                    machine[f"{backend}_version"] = data["backend_version"]
                if data.get("python"):
                    machine[f"{backend}_python"] = data["python"]
    if not machine.get("ember_version"):
        machine["ember_version"] = _ember_version_from_source()

    order: list[str] = []
    for data in raw:
        for name in data.get("results", {}):
            if name not in order:
                order.append(name)
    report = {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": machine,
        "pythons": {b: pythons[b] for b in backends},
        "skipped": skipped,
        "rounds_requested": args.rounds,
        "quick": args.quick,
        "only": args.only,
        "multinode": bool(mn_names),
        "figure_order": order,
        "medians": {b: aggregate(raw, b) for b in backends},
        "raw": raw,
    }
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1, default=str)
        print(f"wrote {args.json}", file=sys.stderr)
    print(render_markdown(report) if args.markdown else render_text(report))
    for s in skipped:
        print(f"NOTE: {s}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
