"""Worker output in files and at the driver: names, rotation, dedup, colour, bars.

Tests that need a driver's own output (deduplication, colour on a terminal,
progress bars) run a driver script in a subprocess and read what it wrote;
the others run in this process with ``capfd``.
"""

from __future__ import annotations

import glob
import os
import pty
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from tests.conftest import wait_until

import ember
from ember.api import runtime_access

pytestmark = pytest.mark.multiprocess

DRIVER_TIMEOUT_S = 120


@pytest.fixture
def local(monkeypatch):
    """An embedded cluster started with the environment the test set."""
    started = []

    def start(**env: str) -> str:
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        ember.init(num_cpus=2)
        started.append(True)
        return os.path.join(runtime_access.worker().session_dir, "logs")

    yield start
    if ember.is_initialized():
        ember.shutdown()


@ember.remote
def speak(out: str, err: str) -> int:
    print(out)
    print(err, file=sys.stderr)
    return os.getpid()


@ember.remote
def chatter(n: int) -> int:
    for i in range(n):
        print(f"line {i:05d} " + "x" * 40)
    print("the-last-line-9911")
    return os.getpid()


def _files(logs: str, pid: int, suffix: str) -> list[str]:
    return glob.glob(os.path.join(logs, f"worker-*-ffffffff-{pid}.{suffix}*"))


def test_a_tasks_output_is_in_its_workers_files_and_at_the_driver(local, capfd):
    logs = local()
    pid = ember.get(speak.remote("out-line-4711", "err-line-4712"))
    (out_file,) = _files(logs, pid, "out")
    (err_file,) = _files(logs, pid, "err")
    assert "out-line-4711" in Path(out_file).read_text()
    assert "err-line-4712" in Path(err_file).read_text()
    for f in (out_file, err_file):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(os.path.dirname(logs)).st_mode) == 0o700  # the session
    seen = {"out": "", "err": ""}

    def arrived() -> bool:
        o, e = capfd.readouterr()
        seen["out"] += o
        seen["err"] += e
        return "out-line-4711" in seen["out"] and "err-line-4712" in seen["err"]

    assert wait_until(arrived, 30), seen
    assert f"(speak pid={pid}) out-line-4711" in seen["out"]
    assert f"(speak pid={pid}) err-line-4712" in seen["err"]


def test_worker_files_rotate_at_their_size_limit(local, capfd):
    logs = local(
        EMBER_LOG_ROTATION_MAX_BYTES="4000", EMBER_LOG_ROTATION_BACKUP_COUNT="2"
    )
    pid = ember.get(chatter.remote(300))  # ~15 kB
    names = sorted(os.path.basename(f) for f in _files(logs, pid, "out"))
    base = names[0]
    assert names == [base, base + ".1", base + ".2"], names
    for f in _files(logs, pid, "out"):
        assert os.path.getsize(f) < 4000 + 100
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert "the-last-line-9911" in Path(logs, base).read_text()
    # the oldest lines were dropped with the oldest backup; streaming went on
    assert wait_until(lambda: "the-last-line-9911" in capfd.readouterr().out, 30)


def run_driver(
    code: str, *, env: dict[str, str] | None = None, tty: bool = False
) -> tuple[str, str]:
    """Run a driver script; its (stdout, stderr) (both the terminal's text with ``tty``)."""
    full = dict(os.environ)
    full.update(env or {})
    script = textwrap.dedent(code)
    if not tty:
        p = subprocess.run(
            [sys.executable, "-c", script],
            env=full,
            capture_output=True,
            text=True,
            timeout=DRIVER_TIMEOUT_S,
        )
        assert p.returncode == 0, p.stderr
        return p.stdout, p.stderr
    master, slave = pty.openpty()
    p = subprocess.Popen(
        [sys.executable, "-c", script],
        env=full,
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: every writer closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    assert p.wait(DRIVER_TIMEOUT_S) == 0, b"".join(chunks)
    text = b"".join(chunks).decode(errors="replace")
    return text, text


#: a driver whose four actors (four processes) print the same line
DEDUP_DRIVER = """
    import os, time
    import ember
    from ember.api import runtime_access

    ember.init(num_cpus=4)

    @ember.remote
    class Greeter:
        def hello(self):
            print("hello-from-a-greeter")
            return os.getpid()

    actors = [Greeter.remote() for _ in range(4)]
    pids = ember.get([a.hello.remote() for a in actors])
    assert len(set(pids)) == 4
    printer = runtime_access.worker().log_printer
    deadline = time.monotonic() + 60
    while printer.messages < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
    print("MESSAGES", printer.messages)
    ember.shutdown()
"""


def test_lines_repeated_across_workers_are_printed_once_with_a_count():
    out, err = run_driver(DEDUP_DRIVER)
    assert "MESSAGES 4" in out, out
    lines = [ln for ln in out.splitlines() if "hello-from-a-greeter" in ln]
    assert len(lines) == 2, out
    assert lines[0].startswith("(Greeter pid=")
    assert lines[0].endswith(") hello-from-a-greeter")
    assert "hello-from-a-greeter [repeated 3x across cluster]" in lines[1]
    assert "EMBER_DEDUP_LOGS=0" in lines[1]  # the hint, with the first summary
    assert "\x1b[" not in out + err  # not a terminal: no colour


def test_dedup_switched_off_prints_every_line():
    out, _ = run_driver(DEDUP_DRIVER, env={"EMBER_DEDUP_LOGS": "0"})
    lines = [ln for ln in out.splitlines() if "hello-from-a-greeter" in ln]
    assert len(lines) == 4, out
    assert not any("repeated" in ln for ln in lines)


COLOUR_DRIVER = """
    import time
    import ember
    from ember.api import runtime_access

    ember.init(num_cpus=1)

    @ember.remote
    def paint():
        print("colour-me-3141")

    ember.get(paint.remote())
    printer = runtime_access.worker().log_printer
    deadline = time.monotonic() + 60
    while printer.messages < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    ember.shutdown()
"""


def test_prefixes_are_coloured_on_a_terminal_unless_no_color():
    text, _ = run_driver(COLOUR_DRIVER, tty=True, env={"NO_COLOR": ""})
    assert "\x1b[36m(paint pid=" in text, text
    assert "colour-me-3141" in text, text
    text, _ = run_driver(COLOUR_DRIVER, tty=True, env={"NO_COLOR": "1"})
    assert "colour-me-3141" in text, text
    assert "\x1b[36m" not in text, text


TQDM_DRIVER = """
    import time
    import ember
    from ember.api import runtime_access
    from ember.experimental import tqdm_ray

    ember.init(num_cpus=1)

    @ember.remote
    def crunch():
        bar = tqdm_ray.tqdm(total=5, desc="crunching-2718", flush_interval_s=0)
        for _ in range(5):
            bar.update(1)
        bar.close()

    ember.get(crunch.remote())
    printer = runtime_access.worker().log_printer
    deadline = time.monotonic() + 60
    while printer.messages < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    ember.shutdown()
"""


def test_tqdm_ray_bars_from_a_task_are_drawn_at_the_driver():
    pytest.importorskip("tqdm")
    out, err = run_driver(TQDM_DRIVER)
    assert "__ray_tqdm_magic_token__" not in out + err
    assert "crunching-2718" in err, err
    assert "5/5" in err, err


def test_progress_waits_for_refs_with_a_bar(local, capfd, monkeypatch):
    pytest.importorskip("tqdm")
    monkeypatch.setenv(
        "EMBER_TQDM_PATCH_PRINT", "0"
    )  # leave this process's print alone
    local()
    from ember.util import progress

    @ember.remote
    def square(x: int) -> int:
        return x * x

    refs = [square.remote(i) for i in range(6)]
    assert progress(refs + refs[:1], desc="squares-1618") == [0, 1, 4, 9, 16, 25, 0]
    err = capfd.readouterr().err
    assert "squares-1618" in err, err
    assert "7/7" in err, err


@ember.remote
class Doomed:
    def pid(self) -> int:
        return os.getpid()


def test_daemon_logs_rotate_too(local):
    logs = local(
        EMBER_LOG_ROTATION_MAX_BYTES="100", EMBER_LOG_ROTATION_BACKUP_COUNT="3"
    )
    node_log = os.path.join(logs, "node.log")

    def rotated() -> bool:
        # each killed actor's worker exit is one record in node.log
        a = Doomed.remote()
        ember.get(a.pid.remote())
        ember.kill(a)
        return os.path.exists(node_log + ".1")

    assert wait_until(rotated, 60)
    for f in glob.glob(node_log + "*"):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert not os.path.exists(node_log + ".4")
