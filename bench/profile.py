"""Profile one control-path benchmark: where the driver and the worker spend time.

For a workload (see ``LOADS``), a child process runs it in a loop on a fresh
embedded cluster while this script

* samples the driver and the worker that serves it with ``py-spy`` (raw,
  per thread, ``--idle`` left out so only running stacks count), and
* reads each thread's CPU time from ``/proc`` before and after,

then writes a text report: operations/s, CPU microseconds per operation per
thread, and the top frames by own and inclusive samples per thread.

Usage::

    pip install py-spy
    python bench/profile.py actor_calls_sync            # -> bench/profiles/actor_calls_sync.txt
    python bench/profile.py all --seconds 6
    python bench/profile.py tasks_sync --out -          # print only

Sampling slows the profiled processes (the report prints the rate with and
without it); compare profiles with each other, not with bench/run.py figures.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
OUT_DIR = HERE / "profiles"

#: workload name -> (setup code, one operation, operations per call)
LOADS: dict[str, tuple[str, str, int]] = {
    "tasks_sync": ("", "ray.get(noop.remote())", 1),
    "tasks_async": ("", "ray.get([noop.remote() for _ in range(1000)])", 1000),
    "actor_calls_sync": ("a = Server.remote()", "ray.get(a.ping.remote())", 1),
    "actor_calls_async": (
        "a = Server.remote()",
        "ray.get([a.ping.remote() for _ in range(1000)])",
        1000,
    ),
    "actor_creation": (
        "",
        "ray.get([s.ping.remote() for s in [Server.remote() for _ in range(4)]])",
        4,
    ),
    "put_small": ("", "ray.put(1)", 1),
    "get_small": ("r = ray.put(1)", "ray.get(r)", 1),
}

CHILD = """
import json, os, sys, time
import ember as ray
ray.init(num_cpus=2, log_to_driver=False)

@ray.remote
def noop():
    return os.getpid()

@ray.remote
class Server:
    def ping(self):
        return os.getpid()

{setup}
worker_pid = ray.get(noop.remote()) if "a" not in dir() else ray.get(a.ping.remote())
print(json.dumps({{"driver": os.getpid(), "worker": worker_pid}}), flush=True)
seconds = float(sys.argv[1])

def run(seconds):
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        {op}
        n += 1
    return n * {per} / (time.perf_counter() - t0)

unprofiled = run(2.0)
print(json.dumps({{"ready": True}}), flush=True)
profiled = run(seconds)
print(json.dumps({{"unprofiled": unprofiled, "profiled": profiled}}), flush=True)
ray.shutdown()
"""


def _thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds per thread (name/tid) of ``pid``."""
    out: dict[str, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            stat = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        out[tid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def _summarise(raw: str, top: int) -> list[str]:
    per_thread: collections.Counter[str] = collections.Counter()
    own: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    incl: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        n = int(count)
        thread = frames[0]
        per_thread[thread] += n
        own[thread][frames[-1]] += n
        for f in set(frames[1:]):
            incl[thread][f] += n
    lines = []
    for thread, total in per_thread.most_common():
        lines.append(f"  {thread}: {total} samples")
        lines.append("    own:")
        for f, c in own[thread].most_common(top):
            lines.append(f"      {100 * c / total:5.1f}%  {f}")
        lines.append("    inclusive:")
        for f, c in incl[thread].most_common(top):
            lines.append(f"      {100 * c / total:5.1f}%  {f}")
    return lines


def profile(name: str, seconds: float, rate: int, top: int) -> str:
    setup, op, per = LOADS[name]
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    code = CHILD.format(setup=setup, op=op, per=per)
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    child = subprocess.Popen(
        [sys.executable, "-c", code, str(seconds)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    pids = json.loads(child.stdout.readline())
    json.loads(child.stdout.readline())  # ready: the profiled loop starts now
    cpu0 = {role: _thread_cpu(pid) for role, pid in pids.items()}
    raws: dict[str, str] = {}
    spies = {}
    for role, pid in pids.items():
        path = f"/tmp/ember-profile-{name}-{role}.txt"
        spies[role] = (
            subprocess.Popen(
                [
                    py_spy,
                    "record",
                    "-r",
                    str(rate),
                    "-d",
                    str(int(seconds) - 1),
                    "-f",
                    "raw",
                    "-o",
                    path,
                    "--pid",
                    str(pid),
                    "--threads",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            ),
            path,
        )
    for role, (proc, path) in spies.items():
        proc.wait(timeout=seconds + 30)
        raws[role] = Path(path).read_text() if Path(path).exists() else ""
        Path(path).unlink(missing_ok=True)
    cpu1 = {role: _thread_cpu(pid) for role, pid in pids.items()}
    result = json.loads(child.stdout.readline())
    child.wait(timeout=60)
    ops = result["profiled"] * (seconds - 1)
    lines = [
        f"# profile: {name}  ({op})",
        f"ember {_git_sha()}; {os.cpu_count()} CPUs; py-spy {rate} Hz for {seconds - 1:.0f} s",
        f"rate: {result['unprofiled']:,.0f} ops/s unprofiled, "
        f"{result['profiled']:,.0f} ops/s while sampled",
        "",
        "CPU per operation (while sampled), by process and thread id:",
    ]
    for role in pids:
        for tid, t1 in sorted(cpu1[role].items()):
            used = t1 - cpu0[role].get(tid, 0.0)
            if used > 0:
                lines.append(f"  {role:7s} tid {tid:>7s}: {1e6 * used / ops:8.1f} us")
    for role, raw in raws.items():
        lines += ["", f"## {role} (pid {pids[role]})", *_summarise(raw, top)]
    return "\n".join(lines) + "\n"


def _git_sha() -> str:
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("workload", choices=[*LOADS, "all"])
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--rate", type=int, default=250, help="py-spy samples/s")
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument(
        "--out", help="file, or - for stdout (default bench/profiles/NAME.txt)"
    )
    args = ap.parse_args(argv)
    names = list(LOADS) if args.workload == "all" else [args.workload]
    for name in names:
        report = profile(name, args.seconds, args.rate, args.top)
        if args.out == "-":
            print(report)
            continue
        path = Path(args.out) if args.out else OUT_DIR / f"{name}.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(report)
        print(f"{name}: {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
