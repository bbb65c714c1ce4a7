"""The Ray Core program corpus runs on ember: every program that passes on Ray 2.60
(as recorded in ``ray_results.json``) must pass on ember.

Each program runs in its own process, with ``import ray`` resolved to ember by the
shim (see ``run.py``), and must exit 0 and leave no ember process or shared-memory
file behind. A program that fails on Ray too is skipped with Ray's error. Programs in
``MISSING`` fail on ember today because a feature is not there yet: they are strict
xfails, so the test breaks (and the entry must go) as soon as the feature lands.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("corpus_run", HERE / "run.py")
assert _spec is not None
assert _spec.loader is not None
corpus = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(corpus)

#: program -> the missing ember feature that makes it fail today.
MISSING: dict[str, str] = {
    "generator_wait": "ray.wait on an ObjectRefGenerator (NotImplementedError)",
}

RAY_RESULTS = corpus.load_ray_results()
PROGRAM_TIMEOUT_S = 90.0


def _program_params() -> list[pytest.param]:
    params = []
    for path in corpus.program_paths():
        marks = []
        ray = RAY_RESULTS.get(path.stem)
        if ray is not None and not ray["passed"]:
            marks.append(pytest.mark.skip(reason=f"fails on Ray 2.60: {ray['error']}"))
        elif path.stem in MISSING:
            marks.append(pytest.mark.xfail(strict=True, reason=MISSING[path.stem]))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.timeout(PROGRAM_TIMEOUT_S + 30)
@pytest.mark.parametrize("path", _program_params())
def test_program_runs_on_ember(path: Path, tmp_path: Path) -> None:
    outcome = corpus.run_program(path, "ember", PROGRAM_TIMEOUT_S, cwd=str(tmp_path))
    left = corpus.wait_for_no_leftovers(outcome["pid"])
    if left:
        corpus.kill_leftovers(outcome["pid"])
    assert outcome["passed"], f"{outcome['error']}\n{outcome['output']}"
    assert not left, f"{path.stem} left behind: {left}"


def test_every_program_has_a_recorded_ray_result() -> None:
    names = {p.stem for p in corpus.program_paths()}
    assert len(names) >= 50
    missing = sorted(names - set(RAY_RESULTS))
    assert not missing, (
        f"record Ray's outcome: python tests/corpus/run.py --engine ray "
        f"--only NAME --json OUT, then merge OUT into ray_results.json: {missing}"
    )
    assert sorted(set(MISSING) - names) == [], "MISSING names unknown programs"


def test_every_program_imports_ray_first_and_initializes() -> None:
    for path in corpus.program_paths():
        text = path.read_text()
        assert "import ray\n" in text, path.name
        assert "ray.init(" in text, path.name


def test_shim_resolves_ray_and_its_submodules_to_ember() -> None:
    code = (
        "import ray, ray.util.queue, ray.exceptions\n"
        "from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy\n"
        "import ember, ember.util.queue, ember.exceptions, "
        "ember.util.scheduling_strategies as s\n"
        "assert ray is ember\n"
        "assert ray.util.queue is ember.util.queue\n"
        "assert ray.exceptions is ember.exceptions\n"
        "assert NodeAffinitySchedulingStrategy is s.NodeAffinitySchedulingStrategy\n"
        "assert ember.util.queue.__spec__.name == 'ember.util.queue'\n"
        "try:\n"
        "    import ray.no_such_module\n"
        "except ModuleNotFoundError:\n"
        "    pass\n"
        "else:\n"
        "    raise AssertionError('a missing submodule imported')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env=corpus.engine_env("ember"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def test_error_line_names_the_wrapped_exception() -> None:
    stderr = (
        "noise\nTraceback (most recent call last):\n"
        '  File "p.py", line 3, in <module>\n'
        "ember.exceptions.TaskError(KeyError): ember::f() (pid=1, ip=127.0.0.1)\n"
        '  File "p.py", line 2, in f\n'
        "KeyError: 'x'\n"
    )
    assert corpus.error_line(stderr, 1) == (
        "ember.exceptions.TaskError(KeyError): ember::f() (pid=1, ip=127.0.0.1)"
        " | KeyError: 'x'"
    )
    assert corpus.error_line("", 3) == "exit code 3"


def test_error_line_prefers_the_traceback_that_ended_the_program() -> None:
    program = Path("/x/prog.py")
    stderr = (
        "Traceback (most recent call last):\n"
        f'  File "{program}", line 9, in <module>\n'
        "TimeoutError: get timed out\n"
        "ERROR a background task failed\n"
        "Traceback (most recent call last):\n"
        '  File "/lib/conn.py", line 1, in _send\n'
        "AttributeError: shutdown noise\n"
    )
    assert corpus.error_line(stderr, 1, program) == "TimeoutError: get timed out"
    assert corpus.error_line(stderr, 1) == "AttributeError: shutdown noise"
