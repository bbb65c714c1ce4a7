"""Run the Ray Core program corpus on Ray and on ember, and compare the outcomes.

Every ``programs/*.py`` is a plain Ray program (``import ray``) that checks its own
results and exits 0 when they are right. Each program runs in a fresh process with a
timeout: on Ray with ``/tmp/ray-venv/bin/python`` (under ``nice -n 19``), on ember
with this interpreter and ``shim/`` first on ``PYTHONPATH`` (there ``import ray``
yields ember). Programs run one at a time.

    python tests/corpus/run.py                      # both engines, print a table
    python tests/corpus/run.py --engine ember       # compare with ray_results.json
    python tests/corpus/run.py --only 'actor_*' --only tasks_square
    python tests/corpus/run.py --engine ray --json tests/corpus/ray_results.json

The exit code is 1 when a program that passes on Ray (in this run, or as recorded in
``ray_results.json`` when Ray is not run) fails on ember, else 0.
"""

from __future__ import annotations

import argparse
import fnmatch
import glob
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

HERE = Path(__file__).resolve().parent
PROGRAMS_DIR = HERE / "programs"
SHIM_DIR = HERE / "shim"
RAY_RESULTS = HERE / "ray_results.json"
RAY_PYTHON = os.environ.get("CORPUS_RAY_PYTHON", "/tmp/ray-venv/bin/python")
DEFAULT_TIMEOUT_S = 60.0
ENGINES = ("ray", "ember")


def program_paths(only: list[str] | None = None) -> list[Path]:
    """The corpus programs, sorted by name, filtered by ``only`` (names or globs)."""
    paths = sorted(PROGRAMS_DIR.glob("*.py"))
    if not only:
        return paths
    return [p for p in paths if any(fnmatch.fnmatch(p.stem, pat) for pat in only)]


def engine_env(engine: str) -> dict[str, str]:
    """The environment a program runs with on ``engine`` ("ray" or "ember")."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")
    env = dict(os.environ)
    parts = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    parts = [p for p in parts if Path(p).resolve() != SHIM_DIR]
    env["PYTHONUNBUFFERED"] = "1"
    if engine == "ember":
        parts.insert(0, str(SHIM_DIR))
    else:
        env.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    if parts:
        env["PYTHONPATH"] = os.pathsep.join(parts)
    else:
        env.pop("PYTHONPATH", None)
    return env


def engine_command(engine: str, path: Path) -> list[str]:
    """The command that runs the program at ``path`` on ``engine``."""
    if engine == "ember":
        return [sys.executable, str(path)]
    if engine == "ray":
        return ["nice", "-n", "19", RAY_PYTHON, str(path)]
    raise ValueError(f"unknown engine {engine!r}; expected one of {ENGINES}")


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_EXC_LINE = re.compile(r"^[A-Za-z_][\w.]*(\([\w.]+\))?: ")


def error_line(stderr: str, returncode: int, program: Path | None = None) -> str:
    """One line saying why a program failed, from its ``stderr``.

    The first line of the exception of the traceback that ended the program (the
    last one whose first frame is the ``program``'s module level; else the last
    traceback); when that is a wrapped task error (``RayTaskError(ValueError):
    ray::f() (pid=...)``), the wrapped exception's own line is appended. Else the
    last line of ``stderr``, else the exit code.
    """
    lines = _ANSI.sub("", stderr).splitlines()
    starts = [
        i
        for i, line in enumerate(lines)
        if line.startswith("Traceback (most recent call last):")
    ]
    if program is not None:
        frame = f'File "{program}", line '
        fatal = [
            i
            for i in starts
            if i + 1 < len(lines)
            and frame in lines[i + 1]
            and lines[i + 1].endswith("in <module>")
        ]
        starts = fatal or starts
    if starts:
        rest = lines[starts[-1] + 1 :]
        for j, line in enumerate(rest):
            if line.strip() and not line[0].isspace():
                head = line.strip()
                block = []
                for c in rest[j + 1 :]:
                    if c.startswith("Traceback (most recent call last):"):
                        break
                    block.append(c)
                causes = [c for c in block if _EXC_LINE.match(c)]
                if causes and causes[-1].strip() != head:
                    return f"{head} | {causes[-1].strip()}"
                return head
    for line in reversed(lines):
        if line.strip():
            return line.strip()
    return f"exit code {returncode}"


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_program(
    path: Path,
    engine: str,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    cwd: str | None = None,
) -> dict[str, Any]:
    """Run one program on one engine in a fresh process (and session).

    Returns ``{"passed", "seconds", "error", "returncode", "pid", "output"}``;
    ``output`` is the tail of stdout and stderr, for diagnosing a failure.
    """
    cmd, env = engine_command(engine, path), engine_env(engine)
    workdir = cwd or tempfile.mkdtemp(prefix=f"corpus-{engine}-")
    start = time.monotonic()
    proc = subprocess.Popen(
        cmd,
        cwd=workdir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    timed_out = False
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        out, err = proc.communicate()
    seconds = round(time.monotonic() - start, 2)
    passed = proc.returncode == 0 and not timed_out
    if passed:
        error = None
    elif timed_out:
        error = f"timeout after {timeout_s:g}s"
    else:
        error = error_line(err, proc.returncode, path)
    return {
        "passed": passed,
        "seconds": seconds,
        "error": error,
        "returncode": proc.returncode,
        "pid": proc.pid,
        "output": (out[-2000:] + "\n--- stderr ---\n" + err[-4000:])
        if not passed
        else "",
    }


def ember_leftovers(pid: int) -> list[str]:
    """Processes and shared-memory files of the ember sessions a driver ``pid``
    started that are still there (it should have removed them on exit)."""
    tag = f"_{pid}/"
    left = []
    for proc in psutil.process_iter(["cmdline", "pid"]):
        cmdline = " ".join(proc.info["cmdline"] or ())
        if tag in cmdline:
            try:
                if proc.status() != psutil.STATUS_ZOMBIE:
                    left.append(f"pid {proc.info['pid']}: {cmdline[:120]}")
            except psutil.NoSuchProcess:
                pass
    left.extend(glob.glob(f"/dev/shm/ember-session_*_{pid}-*"))
    return left


def wait_for_no_leftovers(pid: int, timeout_s: float = 15.0) -> list[str]:
    """Poll :func:`ember_leftovers` until it is empty or ``timeout_s`` passes
    (daemons may take a moment to exit after their driver); return the last answer."""
    deadline = time.monotonic() + timeout_s
    left = ember_leftovers(pid)
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = ember_leftovers(pid)
    return left


def kill_leftovers(pid: int) -> None:
    """Kill the processes :func:`ember_leftovers` reports and remove the shm files."""
    tag = f"_{pid}/"
    for proc in psutil.process_iter(["cmdline"]):
        if tag in " ".join(proc.info["cmdline"] or ()):
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
    for f in glob.glob(f"/dev/shm/ember-session_*_{pid}-*"):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass


def ray_version() -> str | None:
    try:
        out = subprocess.run(
            [RAY_PYTHON, "-c", "import ray; print(ray.__version__)"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def load_ray_results(path: Path = RAY_RESULTS) -> dict[str, dict[str, Any]]:
    """``{program: ray outcome}`` as recorded by ``--engine ray --json``."""
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    return {
        name: entry["ray"] for name, entry in data["programs"].items() if "ray" in entry
    }


def _cell(outcome: dict[str, Any] | None, width: int) -> str:
    if outcome is None:
        return "-"
    if outcome["passed"]:
        return f"pass ({outcome['seconds']:.1f}s)"
    text = f"FAIL {outcome['error']}"
    return text if len(text) <= width else text[: width - 3] + "..."


def format_table(
    results: dict[str, dict[str, dict[str, Any]]], engines: list[str]
) -> str:
    width = 90
    name_w = max([len("program"), *(len(n) for n in results)])
    header = "program".ljust(name_w) + "".join(
        f" | {e.ljust(width if len(engines) == 1 or e == engines[-1] else 40)}"
        for e in engines
    )
    rows = [header.rstrip(), "-" * len(header.rstrip())]
    for name, by_engine in results.items():
        cells = []
        for e in engines:
            w = width if len(engines) == 1 or e == engines[-1] else 40
            cells.append(f" | {_cell(by_engine.get(e), w).ljust(w)}")
        rows.append((name.ljust(name_w) + "".join(cells)).rstrip())
    return "\n".join(rows)


def regressions(
    results: dict[str, dict[str, dict[str, Any]]],
    recorded: dict[str, dict[str, Any]],
) -> list[str]:
    """Programs that pass on Ray (this run, else the record) and fail on ember."""
    bad = []
    for name, by_engine in results.items():
        ember = by_engine.get("ember")
        if ember is None or ember["passed"]:
            continue
        ray = by_engine.get("ray") or recorded.get(name)
        if ray is None or ray["passed"]:
            bad.append(name)
    return bad


def write_json(
    out: Path,
    results: dict[str, dict[str, dict[str, Any]]],
    engines: list[str],
    merge: bool = False,
) -> None:
    """Write ``{"ray_version", "programs": {name: {engine: outcome}}}`` to ``out``;
    with ``merge``, keep the other programs (and engines) already in the file."""
    doc: dict[str, Any] = {"ray_version": None, "programs": {}}
    if merge and out.exists():
        doc = json.loads(out.read_text())
    if "ray" in engines:
        doc["ray_version"] = ray_version()
    for name, by_engine in results.items():
        entry = doc["programs"].setdefault(name, {})
        for engine, outcome in by_engine.items():
            entry[engine] = {
                k: v for k, v in outcome.items() if k not in ("pid", "output")
            }
    doc["programs"] = dict(sorted(doc["programs"].items()))
    out.write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", choices=["both", *ENGINES], default="both")
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="program name or glob (without .py); repeatable",
    )
    parser.add_argument("--json", metavar="OUT", help="write the outcomes as JSON")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="update the --json file in place: replace only the programs run now",
    )
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S)
    args = parser.parse_args(argv)

    engines = list(ENGINES) if args.engine == "both" else [args.engine]
    paths = program_paths(args.only)
    if not paths:
        parser.error("no program matches --only")
    results: dict[str, dict[str, dict[str, Any]]] = {}
    for path in paths:
        results[path.stem] = {}
        for engine in engines:
            outcome = run_program(path, engine, args.timeout)
            if engine == "ember":
                left = wait_for_no_leftovers(outcome["pid"])
                if left:
                    kill_leftovers(outcome["pid"])
                    if outcome["passed"]:
                        outcome.update(passed=False, error=f"left behind {left[0]}")
            results[path.stem][engine] = outcome
            status = "pass" if outcome["passed"] else f"FAIL {outcome['error']}"
            print(f"[{engine}] {path.stem}: {status}", file=sys.stderr, flush=True)

    print(format_table(results, engines))
    recorded = {} if "ray" in engines else load_ray_results()
    bad = regressions(results, recorded)
    summary = ", ".join(
        f"{e}: {sum(r[e]['passed'] for r in results.values())}/{len(results)} passed"
        for e in engines
    )
    print(f"\n{summary}")
    if bad:
        print(f"pass on Ray, fail on ember: {', '.join(bad)}")
    if args.json:
        write_json(Path(args.json), results, engines, merge=args.merge)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
