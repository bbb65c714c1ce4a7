"""Benchmark workloads that run unchanged on ember and on Ray.

Usage::

    python bench/workloads.py --backend {ember,ray} --json OUT [--only A,B] [--quick]

The module imports ``ember as ray`` or ``ray`` according to ``--backend`` and then
uses only the public Ray API, so the very same code measures both systems.  Each
workload is repeated a few times and the median is reported.  A failing workload
is recorded as ``{"error": ...}`` and the suite moves on; a watchdog thread writes
the partial results and hard-exits the process when a workload (or the whole run)
exceeds its time budget, so a hung backend never hangs the run.

Every result is a dict::

    {"value": float, "unit": str, "better": "higher" | "lower",
     "samples": [float, ...], "note": str}
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

# the mn_* figures and their watchdog timeouts; bench/multinode.py, which also
# starts the clusters, holds the list (bench/ is sys.path[0] for this script).
from multinode import FIGURES as MULTINODE

try:
    import psutil
except ImportError:  # pragma: no cover - psutil is in both venvs
    psutil = None

MiB = 1024**2
GiB = 1024**3
GB = 1e9  # rates are reported in decimal GB/s

# Options passed to init(): only ones that ember and Ray both accept.
INIT_KWARGS: dict[str, Any] = {"num_cpus": 2, "object_store_memory": 4 * GiB}

ray: Any = None  # the backend module, bound in main()
QUICK = False
BENCH_START = time.time()


# --------------------------------------------------------------------------- #
# timing helpers
# --------------------------------------------------------------------------- #


def _result(
    samples: list[float], unit: str, better: str, note: str = ""
) -> dict[str, Any]:
    return {
        "value": statistics.median(samples),
        "unit": unit,
        "better": better,
        "samples": samples,
        "note": note,
    }


def rate(
    fn: Callable[[], Any],
    ops_per_call: int,
    *,
    seconds: float,
    reps: int = 3,
    unit: str = "ops/s",
    note: str = "",
    warmup: Callable[[], Any] | None = None,
) -> dict[str, Any]:
    """Call ``fn`` repeatedly for ~``seconds`` per repetition; report ops/s."""
    if QUICK:
        seconds, reps = min(seconds, 0.3), min(reps, 2)
    (warmup or fn)()  # warm-up (worker start, function export, caches)
    samples = []
    for _ in range(reps):
        calls = 0
        start = time.perf_counter()
        deadline = start + seconds
        while True:
            fn()
            calls += 1
            now = time.perf_counter()
            if now >= deadline:
                break
        samples.append(calls * ops_per_call / (now - start))
    return _result(samples, unit, "higher", note)


def durations(
    fn: Callable[[], Any],
    *,
    reps: int = 3,
    unit: str = "s",
    warmup: bool = True,
    scale: float = 1.0,
    note: str = "",
) -> dict[str, Any]:
    """Time ``fn`` ``reps`` times; report the median wall time (x ``scale``)."""
    if QUICK:
        reps = min(reps, 2)
    if warmup:
        fn()
    samples = []
    for _ in range(reps):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * scale)
    return _result(samples, unit, "lower", note)


def throughput(
    fn: Callable[[], Any], nbytes: int, *, reps: int = 3, note: str = ""
) -> dict[str, Any]:
    """Time ``fn`` (which moves ``nbytes``) and report GB/s."""
    res = durations(fn, reps=reps, note=note)
    res["samples"] = [nbytes / GB / s for s in res["samples"]]
    res.update(value=statistics.median(res["samples"]), unit="GB/s", better="higher")
    return res


def touched_array(nbytes: int) -> np.ndarray:
    """An array whose pages are really backed (np.zeros would be lazily mapped)."""
    arr = np.empty(nbytes, dtype=np.uint8)
    arr.fill(1)
    return arr


# --------------------------------------------------------------------------- #
# physical ceilings (no backend involved)
# --------------------------------------------------------------------------- #


def w_memcpy_gbps() -> dict[str, Any]:
    n = (256 * MiB) if QUICK else GiB
    src = touched_array(n)
    dst = touched_array(n)
    return throughput(
        lambda: np.copyto(dst, src),
        n,
        reps=5,
        note=f"np.copyto of {n // MiB} MiB into a pre-touched array (bytes copied / s)",
    )


def w_memcpy_2t_gbps() -> dict[str, Any]:
    n = (256 * MiB) if QUICK else GiB
    src = touched_array(n)
    dst = touched_array(n)
    half = n // 2

    def copy() -> None:
        other = threading.Thread(target=np.copyto, args=(dst[half:], src[half:]))
        other.start()
        np.copyto(dst[:half], src[:half])
        other.join()

    return throughput(
        copy,
        n,
        reps=5,
        note=f"np.copyto of {n // MiB} MiB by 2 threads, half each (bytes copied / s)",
    )


def _pool_echo(x: Any) -> Any:
    return x


def w_pool_apply_per_s() -> dict[str, Any]:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(1) as pool:
        pool.apply(_pool_echo, (None,))
        return rate(
            lambda: pool.apply(_pool_echo, (None,)),
            1,
            seconds=2.0,
            unit="calls/s",
            note="multiprocessing.Pool(1).apply of a no-op: a synchronous round trip "
            "to another process, pickled both ways",
        )


def w_tcp_stream_gbps() -> dict[str, Any]:
    n = (256 * MiB) if QUICK else GiB
    chunk = 4 * MiB
    srv = socket.create_server(("127.0.0.1", 0))
    port = srv.getsockname()[1]
    pid = os.fork()
    if pid == 0:  # child: send n bytes per connection, until told to stop
        try:
            payload = bytes(chunk)
            while True:
                conn, _ = srv.accept()
                with conn:
                    if conn.recv(1) != b"g":
                        break
                    for _ in range(n // chunk):
                        conn.sendall(payload)
        finally:
            os._exit(0)
    srv.close()
    buf = bytearray(chunk)
    view = memoryview(buf)

    def receive() -> None:
        with socket.create_connection(("127.0.0.1", port)) as c:
            c.sendall(b"g")
            left = n
            while left:
                got = c.recv_into(view, min(chunk, left))
                if not got:
                    raise RuntimeError("the sender closed early")
                left -= got

    try:
        return throughput(
            receive,
            n,
            reps=3,
            note=f"{n // MiB} MiB over a loopback TCP stream between two processes "
            "(sendall of 4 MiB chunks, recv_into a reused buffer)",
        )
    finally:
        with (
            contextlib.suppress(OSError),
            socket.create_connection(("127.0.0.1", port)) as c,
        ):
            c.sendall(b"s")
        os.waitpid(pid, 0)


def w_socket_rtt_us() -> dict[str, Any]:
    rounds = 2000 if QUICK else 20000
    parent_sock, child_sock = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # child: echo until EOF
        parent_sock.close()
        try:
            while True:
                b = child_sock.recv(1)
                if not b:
                    break
                child_sock.sendall(b)
        finally:
            os._exit(0)
    child_sock.close()
    try:

        def pingpong() -> None:
            for _ in range(rounds):
                parent_sock.sendall(b"x")
                parent_sock.recv(1)

        res = durations(
            pingpong,
            reps=5,
            unit="us",
            scale=1e6 / rounds,
            note="1-byte ping-pong over a Unix socketpair between two processes",
        )
    finally:
        parent_sock.close()
        os.waitpid(pid, 0)
    return res


# --------------------------------------------------------------------------- #
# init / shutdown (each repetition in a fresh subprocess)
# --------------------------------------------------------------------------- #


def _probe_init(backend: str) -> None:
    """Entry point of the subprocess: time one init() and one shutdown()."""
    mod = importlib.import_module(backend)
    start = time.perf_counter()
    mod.init(**INIT_KWARGS)
    init_s = time.perf_counter() - start
    start = time.perf_counter()
    mod.shutdown()
    shutdown_s = time.perf_counter() - start
    print("PROBE " + json.dumps({"init_s": init_s, "shutdown_s": shutdown_s}))
    sys.stdout.flush()


_INIT_PROBES: list[dict[str, float]] = []


def _run_init_probes(backend: str) -> list[dict[str, float]]:
    if _INIT_PROBES:
        return _INIT_PROBES
    reps = 1 if QUICK else 3
    for _ in range(reps):
        proc = subprocess.run(
            [
                sys.executable,
                os.path.abspath(__file__),
                "--backend",
                backend,
                "--probe-init",
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("PROBE ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout or "?").strip().splitlines()
            raise RuntimeError(
                f"init probe exited {proc.returncode}: {tail[-1] if tail else ''}"
            )
        _INIT_PROBES.append(json.loads(lines[-1][len("PROBE ") :]))
    return _INIT_PROBES


_SPILL_PROBE: dict[str, Any] = {}


def w_spill(backend: str, name: str) -> dict[str, Any]:
    """One figure of bench/spill.py (run once per backend, in a subprocess)."""
    if not _SPILL_PROBE:
        folder = os.path.join(
            os.environ.get("BENCH_SPILL_DIR") or tempfile.gettempdir(),
            f"bench-spill-{os.getpid()}",
        )
        cmd = [sys.executable, os.path.join(os.path.dirname(__file__), "spill.py")]
        cmd += ["--backend", backend, "--folder", folder] + (
            ["--quick"] if QUICK else []
        )
        proc = subprocess.run(
            cmd, capture_output=True, text=True, timeout=600, check=False
        )
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("SPILL ")]
        if proc.returncode != 0 or not lines:
            tail = (proc.stderr or proc.stdout or "?").strip().splitlines()
            raise RuntimeError(
                f"spill probe exited {proc.returncode}: {tail[-1] if tail else ''}"
            )
        _SPILL_PROBE.update(json.loads(lines[-1][len("SPILL ") :]))
    value, note = _SPILL_PROBE[name]
    return _result([value], "GB/s", "higher", note)


def w_init_s(backend: str) -> dict[str, Any]:
    probes = _run_init_probes(backend)
    return _result(
        [p["init_s"] for p in probes],
        "s",
        "lower",
        "init(num_cpus=2) in a fresh process, until it returns",
    )


def w_shutdown_s(backend: str) -> dict[str, Any]:
    probes = _run_init_probes(backend)
    return _result(
        [p["shutdown_s"] for p in probes],
        "s",
        "lower",
        "shutdown() right after init(), until it returns",
    )


# --------------------------------------------------------------------------- #
# idle footprint
# --------------------------------------------------------------------------- #


def _mem(p: Any) -> tuple[float, float]:
    try:
        info = p.memory_full_info()
        return info.rss, getattr(info, "pss", info.rss)
    except (psutil.AccessDenied, psutil.ZombieProcess):
        info = p.memory_info()
        return info.rss, info.rss


def _backend_processes(backend: str) -> list[Any]:
    """Descendants of the driver plus orphaned daemons of this session.

    Daemons can be re-parented to init (or to a sub-reaper).  Such a process is
    counted when its command line mentions the backend and names this session:
    the driver's pid or a ``session...`` token seen in a descendant's command
    line (Ray's session directory ends in the driver's pid).  Orphans of other
    sessions running on the same machine are thereby left out.
    """
    me = psutil.Process()
    procs = {p.pid: p for p in me.children(recursive=True)}
    tokens = {f"_{me.pid}", f"={me.pid}", f" {me.pid} "}
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            tokens.update(re.findall(r"session[_-][\w.-]{6,}", " ".join(p.cmdline())))
    for p in psutil.process_iter(["pid", "ppid", "cmdline", "create_time", "name"]):
        try:
            if p.pid == me.pid or p.pid in procs:
                continue
            if p.info["create_time"] < BENCH_START - 1:
                continue
            text = " ".join(p.info["cmdline"] or [p.info["name"] or ""]) + " "
            if backend not in text or not any(t in text for t in tokens):
                continue
            if p.info["ppid"] in (0, 1) or p.info["ppid"] in procs:
                procs[p.pid] = p
        except psutil.Error:
            continue
    return list(procs.values())


def w_idle(backend: str) -> dict[str, dict[str, Any]]:
    time.sleep(0.5 if QUICK else 2.0)
    rss = pss = 0.0
    names = []
    procs = _backend_processes(backend)
    for p in procs:
        try:
            r, s = _mem(p)
            rss += r
            pss += s
            names.append(" ".join(p.cmdline()[:2])[:80] or p.name())
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    drss, dpss = _mem(psutil.Process())
    note = "processes besides the driver, after init() and an idle pause"
    return {
        "idle_processes": {
            **_result([len(names)], "count", "lower", note),
            "processes": sorted(names),
        },
        "idle_rss_mb": _result([rss / MiB], "MiB", "lower", note),
        "idle_pss_mb": _result([pss / MiB], "MiB", "lower", note),
        "driver_rss_mb": _result(
            [drss / MiB], "MiB", "lower", f"driver alone (PSS {dpss / MiB:.0f} MiB)"
        ),
    }


# --------------------------------------------------------------------------- #
# remote functions and actors (defined once the backend is imported)
# --------------------------------------------------------------------------- #


class Defs:
    """Namespace for remote definitions, built by ``define()``."""


D = Defs()


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


class FakeNN:
    """The seed program's random-parameter network, 1000x150x150x100."""

    def __init__(self) -> None:
        self.W1 = np.random.rand(1000, 150)
        self.B1 = np.random.rand(150)
        self.W2 = np.random.rand(150, 150)
        self.B2 = np.random.rand(150)
        self.W3 = np.random.rand(150, 100)
        self.B3 = np.random.rand(100)

    def forward(self, x: np.ndarray) -> np.ndarray:
        x = sigmoid(x @ self.W1 + self.B1)
        x = sigmoid(x @ self.W2 + self.B2)
        return sigmoid(x @ self.W3 + self.B3)

    def forwards(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        return [self.forward(x) for x in inputs]


def define() -> None:
    @ray.remote
    def noop() -> bytes:
        return b"ok"

    @ray.remote
    def noop_arg(x: Any) -> bytes:
        return b"ok"

    @ray.remote
    def array_sum(a: np.ndarray) -> float:
        return float(a.sum())

    @ray.remote
    def make_array(nbytes: int) -> np.ndarray:
        arr = np.empty(nbytes, dtype=np.uint8)
        arr.fill(1)
        return arr

    @ray.remote
    def node_id() -> str:
        return str(ray.get_runtime_context().get_node_id())

    @ray.remote
    def sleep_square(x: int) -> int:
        time.sleep(0.1)
        return x * x

    @ray.remote
    def forward_remote(x: np.ndarray, weights: list[np.ndarray]) -> float:
        for w in weights:
            x = np.maximum(np.dot(x, w), 0)
        return float(np.sum(x))

    @ray.remote
    class Server:
        def ping(self) -> bytes:
            return b"ok"

    @ray.remote
    class AsyncServer:
        async def ping(self) -> bytes:
            return b"ok"

    @ray.remote
    class Client:
        """Submits work from inside the cluster (multi-client workloads)."""

        def __init__(self, server: Any = None) -> None:
            self.server = server

        def ready(self) -> bool:
            return True

        def submit_tasks(self, n: int) -> int:
            return len(ray.get([noop.remote() for _ in range(n)]))

        def call_server(self, n: int) -> int:
            return len(ray.get([self.server.ping.remote() for _ in range(n)]))

    @ray.remote
    class Counter:
        def __init__(self) -> None:
            self.n = 0

        def increment(self) -> None:
            self.n += 1

        def read(self) -> int:
            return self.n

    @ray.remote
    class NNActor:
        def __init__(self) -> None:
            self.model = FakeNN()

        def predict(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
            return self.model.forwards(inputs)

    for name, obj in list(locals().items()):
        setattr(D, name, obj)


def _kill(actors: list[Any]) -> None:
    for a in actors:
        with contextlib.suppress(Exception):
            ray.kill(a)


# --------------------------------------------------------------------------- #
# task workloads
# --------------------------------------------------------------------------- #


def w_single_client_tasks_sync() -> dict[str, Any]:
    return rate(
        lambda: ray.get(D.noop.remote()),
        1,
        seconds=2.0,
        unit="tasks/s",
        note="ray.get(f.remote()) in a loop",
    )


def _tasks_async(n: int, reps: int = 3) -> dict[str, Any]:
    n = n // 10 if QUICK else n
    return rate(
        lambda: ray.get([D.noop.remote() for _ in range(n)]),
        n,
        seconds=2.0,
        reps=reps,
        unit="tasks/s",
        warmup=lambda: ray.get([D.noop.remote() for _ in range(100)]),
        note=f"submit {n} no-op tasks, then get all",
    )


def w_single_client_tasks_async() -> dict[str, Any]:
    return _tasks_async(1000)


def w_single_client_tasks_async_10k() -> dict[str, Any]:
    return _tasks_async(10000, reps=2)


def w_single_client_tasks_async_100k() -> dict[str, Any]:
    n = 10_000 if QUICK else 100_000
    return rate(
        lambda: ray.get([D.noop.remote() for _ in range(n)]),
        n,
        seconds=0.0,
        reps=1,
        unit="tasks/s",
        warmup=lambda: ray.get([D.noop.remote() for _ in range(100)]),
        note=f"submit {n} no-op tasks, then get all (one repetition)",
    )


def w_multi_client_tasks_async() -> dict[str, Any]:
    n, m = (100 if QUICK else 1000), 4
    clients = [D.Client.remote() for _ in range(m)]
    try:
        ray.get([c.ready.remote() for c in clients])
        return rate(
            lambda: ray.get([c.submit_tasks.remote(n) for c in clients]),
            n * m,
            seconds=2.0,
            unit="tasks/s",
            note=f"{m} actors each submit {n} no-op tasks and get them",
        )
    finally:
        _kill(clients)


def w_tasks_1mb_numpy_arg() -> dict[str, Any]:
    arr = touched_array(MiB)
    n = 100
    return rate(
        lambda: ray.get([D.noop_arg.remote(arr) for _ in range(n)]),
        n,
        seconds=2.0,
        unit="tasks/s",
        note=f"{n} tasks per batch, each passed a 1 MiB array by value",
    )


def w_wait_1000_refs_s() -> dict[str, Any]:
    n = 200 if QUICK else 1000

    def run() -> None:
        not_ready = [D.noop.remote() for _ in range(n)]
        while not_ready:
            _, not_ready = ray.wait(not_ready)

    return durations(
        run, note=f"submit {n} tasks, then ray.wait one at a time until none remain"
    )


def w_large_ref_to_10_tasks_s() -> dict[str, Any]:
    ref = ray.put(touched_array((10 if QUICK else 100) * MiB))
    return durations(
        lambda: ray.get([D.array_sum.remote(ref) for _ in range(10)]),
        note="a put 100 MiB array's ref passed to 10 tasks that sum it (put not timed)",
    )


# --------------------------------------------------------------------------- #
# actor workloads
# --------------------------------------------------------------------------- #


def w_actor_calls_sync_1_1() -> dict[str, Any]:
    a = D.Server.remote()
    try:
        return rate(
            lambda: ray.get(a.ping.remote()),
            1,
            seconds=2.0,
            unit="calls/s",
            note="ray.get(actor.m.remote()) in a loop",
        )
    finally:
        _kill([a])


def _actor_batch(actor: Any, n: int, note: str) -> dict[str, Any]:
    try:
        return rate(
            lambda: ray.get([actor.ping.remote() for _ in range(n)]),
            n,
            seconds=2.0,
            unit="calls/s",
            note=note,
        )
    finally:
        _kill([actor])


def w_actor_calls_async_1_1() -> dict[str, Any]:
    return _actor_batch(
        D.Server.remote(), 1000, "submit 1000 calls to one actor, then get all"
    )


def w_actor_calls_concurrent_threaded() -> dict[str, Any]:
    return _actor_batch(
        D.Server.options(max_concurrency=16).remote(),
        1000,
        "as actor_calls_async_1_1, threaded actor, max_concurrency=16",
    )


def w_async_actor_calls() -> dict[str, Any]:
    return _actor_batch(
        D.AsyncServer.remote(), 1000, "as actor_calls_async_1_1, `async def` method"
    )


def w_actor_calls_n_n() -> dict[str, Any]:
    n_pairs = 2
    n = 200 if QUICK else 1000
    servers = [D.Server.remote() for _ in range(n_pairs)]
    clients = [D.Client.remote(s) for s in servers]
    try:
        ray.get([c.ready.remote() for c in clients])
        return rate(
            lambda: ray.get([c.call_server.remote(n) for c in clients]),
            n * n_pairs,
            seconds=2.0,
            unit="calls/s",
            note=f"{n_pairs} client actors each send {n} calls to their own "
            "server actor and get them",
        )
    finally:
        _kill(clients + servers)


def w_actor_creation_per_s() -> dict[str, Any]:
    k = 4 if QUICK else 10

    def run() -> None:
        actors = [D.Server.remote() for _ in range(k)]
        ray.get([a.ping.remote() for a in actors])
        _kill(actors)

    res = durations(run, reps=2, warmup=False)
    res["samples"] = [k / s for s in res["samples"]]
    res.update(
        value=statistics.median(res["samples"]),
        unit="actors/s",
        better="higher",
        note=f"create {k} actors and wait for a first call on each",
    )
    return res


# --------------------------------------------------------------------------- #
# object store workloads
# --------------------------------------------------------------------------- #


def w_put_small_per_s() -> dict[str, Any]:
    return rate(
        lambda: ray.put(0), 1, seconds=1.0, unit="puts/s", note="ray.put(0) in a loop"
    )


def w_get_small_per_s() -> dict[str, Any]:
    ref = ray.put(0)
    return rate(
        lambda: ray.get(ref),
        1,
        seconds=1.0,
        unit="gets/s",
        note="ray.get of one small put object in a loop",
    )


def w_put_get_small() -> dict[str, Any]:
    return rate(
        lambda: ray.get(ray.put(0)),
        1,
        seconds=1.0,
        unit="ops/s",
        note="ray.get(ray.put(0)) in a loop",
    )


def _put_large(nbytes: int) -> dict[str, Any]:
    arr = touched_array(nbytes)

    def put() -> None:
        ref = ray.put(arr)
        del ref

    return throughput(
        put, nbytes, reps=3, note=f"ray.put of a {nbytes // MiB} MiB uint8 array"
    )


def _get_large(nbytes: int) -> dict[str, Any]:
    ref = ray.put(touched_array(nbytes))

    def get() -> None:
        out = ray.get(ref)
        assert out.nbytes == nbytes
        del out

    return durations(
        get,
        reps=5,
        unit="ms",
        scale=1e3,
        note=f"ray.get of a put {nbytes // MiB} MiB array (zero-copy read)",
    )


def w_get_1gb_first_ms() -> dict[str, Any]:
    nbytes = (100 if QUICK else 1024) * MiB
    arr = touched_array(nbytes)
    samples = []
    for _ in range(2 if QUICK else 5):
        ref = ray.put(arr)
        start = time.perf_counter()
        out = ray.get(ref)
        samples.append((time.perf_counter() - start) * 1e3)
        assert out.nbytes == nbytes
        del out, ref
    return _result(
        samples, "ms", "lower", "first ray.get of a freshly put 1 GiB array (zero-copy)"
    )


def w_put_100mb_gbps() -> dict[str, Any]:
    return _put_large((10 if QUICK else 100) * MiB)


def w_get_100mb_ms() -> dict[str, Any]:
    return _get_large((10 if QUICK else 100) * MiB)


def w_put_1gb_gbps() -> dict[str, Any]:
    return _put_large((100 if QUICK else 1024) * MiB)


def w_get_1gb_ms() -> dict[str, Any]:
    return _get_large((100 if QUICK else 1024) * MiB)


# --------------------------------------------------------------------------- #
# seed programs
# --------------------------------------------------------------------------- #


def w_seed_100_sleep_tasks_s() -> dict[str, Any]:
    n = 20 if QUICK else 100

    def run() -> None:
        out = ray.get([D.sleep_square.remote(i) for i in range(n)])
        assert out == [i * i for i in range(n)]

    return durations(
        run,
        reps=2,
        warmup=False,
        note=f"{n} tasks of time.sleep(0.1); return x*x "
        f"(ideal on 2 CPUs: {n * 0.05:.1f} s)",
    )


def w_seed_counter_actors() -> dict[str, Any]:
    def run() -> None:
        counters = [D.Counter.remote() for _ in range(4)]
        for c in counters:
            for _ in range(3):
                c.increment.remote()
        got = ray.get([c.read.remote() for c in counters])
        _kill(counters)
        assert got == [3, 3, 3, 3], got

    return durations(
        run,
        reps=3,
        warmup=False,
        note="create 4 Counter actors, 3 increments each, read [3,3,3,3]",
    )


def w_seed_fake_nn_s() -> dict[str, Any]:
    task_num, batch_size, actor_num = (200 if QUICK else 2000), 10, 10

    def run() -> None:
        actors = [D.NNActor.remote() for _ in range(actor_num)]
        start = time.perf_counter()
        futures = []
        for i in range(task_num // batch_size):
            inputs = [np.random.rand(1000) for _ in range(batch_size)]
            futures.append(actors[i % actor_num].predict.remote(inputs))
        results = ray.get(futures)
        elapsed = time.perf_counter() - start
        _kill(actors)
        assert len(results) == task_num // batch_size
        run.elapsed = elapsed  # type: ignore[attr-defined]

    samples = []
    for _ in range(1 if QUICK else 2):
        run()
        samples.append(run.elapsed)  # type: ignore[attr-defined]
    return _result(
        samples,
        "s",
        "lower",
        f"{actor_num} actors, {task_num // batch_size} predict calls of "
        f"{batch_size} inputs; timer starts after actor creation is "
        "submitted, as in the seed",
    )


def w_seed_forward_pass_s() -> dict[str, Any]:
    num_batches, input_size = (5 if QUICK else 20), 100
    layers = [input_size, 1000, 1000, 1000, 1000]
    weights = [
        np.random.randn(layers[i], layers[i + 1]) for i in range(len(layers) - 1)
    ]
    inputs = [np.random.randn(input_size) for _ in range(num_batches)]

    def run() -> None:
        ray.get([D.forward_remote.remote(x, weights) for x in inputs])

    return durations(
        run,
        reps=3,
        warmup=True,
        note=f"{num_batches} forward_remote tasks, weights (~25 MB) "
        "passed by value to each",
    )


# --------------------------------------------------------------------------- #
# multi-node workloads (run with --multinode, against a 2-node cluster that
# run.py starts through the backend's CLI: a head with 1 CPU and a joined node
# with 1 CPU and the custom resource `far`; the driver runs on the head)
# --------------------------------------------------------------------------- #

FAR = {"far": 1}


def _far_ready(ref: Any, timeout: float = 120.0) -> None:
    """Wait until ``ref`` exists on the far node, without pulling it here."""
    ready, _ = ray.wait([ref], timeout=timeout, fetch_local=False)
    if not ready:
        raise TimeoutError(f"far task not done after {timeout} s")


def _mn_far_to_head(nbytes: int, reps: int) -> dict[str, Any]:
    if QUICK:
        nbytes, reps = max(nbytes // 10, MiB), min(reps, 2)
    make = D.make_array.options(resources=FAR)
    ray.get(make.remote(MiB))  # warm-up: far worker, function export, pull path
    samples = []
    for _ in range(reps):
        ref = make.remote(nbytes)
        _far_ready(ref)
        start = time.perf_counter()
        out = ray.get(ref)
        elapsed = time.perf_counter() - start
        assert out.nbytes == nbytes
        del out, ref
        samples.append(nbytes / GB / elapsed)
    return _result(
        samples,
        "GB/s",
        "higher",
        f"a `far` task makes a {nbytes // MiB} MiB array; after ray.wait("
        "fetch_local=False) says it is ready, time ray.get in the driver (head)",
    )


def _mn_head_to_far(nbytes: int, reps: int) -> dict[str, Any]:
    if QUICK:
        nbytes, reps = max(nbytes // 10, MiB), min(reps, 2)
    src = touched_array(nbytes)
    task = D.array_sum.options(resources=FAR)
    ray.get(task.remote(ray.put(touched_array(MiB))))  # warm-up
    samples = []
    for _ in range(reps):
        ref = ray.put(src)  # a fresh object each time, put not timed
        start = time.perf_counter()
        total = ray.get(task.remote(ref))
        elapsed = time.perf_counter() - start
        assert total == nbytes, total
        del ref
        samples.append(nbytes / GB / elapsed)
    return _result(
        samples,
        "GB/s",
        "higher",
        f"driver puts a {nbytes // MiB} MiB array (not timed); time "
        "ray.get(far_task.remote(ref)) where the task returns a.sum() "
        "(includes the sum)",
    )


def w_mn_far_to_head_10mb_gbps() -> dict[str, Any]:
    return _mn_far_to_head(10 * MiB, 5)


def w_mn_far_to_head_100mb_gbps() -> dict[str, Any]:
    return _mn_far_to_head(100 * MiB, 5)


def w_mn_far_to_head_1gb_gbps() -> dict[str, Any]:
    return _mn_far_to_head(GiB, 3)


def w_mn_head_to_far_10mb_gbps() -> dict[str, Any]:
    return _mn_head_to_far(10 * MiB, 5)


def w_mn_head_to_far_100mb_gbps() -> dict[str, Any]:
    return _mn_head_to_far(100 * MiB, 5)


def w_mn_head_to_far_1gb_gbps() -> dict[str, Any]:
    return _mn_head_to_far(GiB, 3)


def w_mn_tasks_sync() -> dict[str, Any]:
    f = D.noop.options(resources=FAR)
    return rate(
        lambda: ray.get(f.remote()),
        1,
        seconds=2.0,
        unit="tasks/s",
        note="ray.get(f.options(resources={'far': 1}).remote()) in a loop",
    )


def w_mn_tasks_async() -> dict[str, Any]:
    n = 100 if QUICK else 1000
    f = D.noop.options(resources=FAR)
    return rate(
        lambda: ray.get([f.remote() for _ in range(n)]),
        n,
        seconds=2.0,
        unit="tasks/s",
        warmup=lambda: ray.get([f.remote() for _ in range(100)]),
        note=f"submit {n} no-op tasks with resources={{'far': 1}}, then get all",
    )


def w_mn_actor_calls_sync() -> dict[str, Any]:
    a = D.Server.options(resources=FAR).remote()
    try:
        return rate(
            lambda: ray.get(a.ping.remote()),
            1,
            seconds=2.0,
            unit="calls/s",
            note="actor with resources={'far': 1}; ray.get(a.m.remote()) in a loop",
        )
    finally:
        _kill([a])


def w_mn_actor_calls_async() -> dict[str, Any]:
    n = 100 if QUICK else 1000
    return _actor_batch(
        D.Server.options(resources=FAR).remote(),
        n,
        f"actor with resources={{'far': 1}}; submit {n} calls, then get all",
    )


def _wait_for_far(timeout: float = 60.0) -> int:
    """Block until the joined node's `far` resource is visible; return #nodes."""
    deadline = time.monotonic() + timeout
    while ray.cluster_resources().get("far", 0) < 1:
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"no node with resource 'far' after {timeout} s: "
                f"{ray.cluster_resources()}"
            )
        time.sleep(0.2)
    # the `far` tasks must really run on the other node than the driver
    far = ray.get(D.node_id.options(resources=FAR).remote(), timeout=timeout)
    here = str(ray.get_runtime_context().get_node_id())
    if far == here:
        raise RuntimeError(f"a 'far' task ran on the driver's node {here}")
    return sum(1 for n in ray.nodes() if n.get("Alive"))


# --------------------------------------------------------------------------- #
# driver
# --------------------------------------------------------------------------- #

CEILINGS = [
    "memcpy_gbps",
    "memcpy_2t_gbps",
    "socket_rtt_us",
    "pool_apply_per_s",
    "tcp_stream_gbps",
]
PROBES = ["init_s", "shutdown_s"]
#: bench/spill.py, in a fresh subprocess (a small store and a spill folder)
SPILL = ["disk_write_gbps", "disk_read_gbps", "spill_gbps", "restore_gbps"]
IDLE = ["idle_processes", "idle_rss_mb", "idle_pss_mb", "driver_rss_mb"]
LIVE = [
    "single_client_tasks_sync",
    "single_client_tasks_async",
    "single_client_tasks_async_10k",
    "single_client_tasks_async_100k",
    "multi_client_tasks_async",
    "tasks_1mb_numpy_arg",
    "actor_calls_sync_1_1",
    "actor_calls_async_1_1",
    "actor_calls_concurrent_threaded",
    "async_actor_calls",
    "actor_calls_n_n",
    "actor_creation_per_s",
    "put_small_per_s",
    "get_small_per_s",
    "put_get_small",
    "put_100mb_gbps",
    "get_100mb_ms",
    "put_1gb_gbps",
    "get_1gb_ms",
    "get_1gb_first_ms",
    "wait_1000_refs_s",
    "large_ref_to_10_tasks_s",
    "seed_100_sleep_tasks_s",
    "seed_counter_actors",
    "seed_fake_nn_s",
    "seed_forward_pass_s",
]
ALL = CEILINGS + PROBES + SPILL + IDLE + LIVE


class Watchdog(threading.Thread):
    """Writes partial results and hard-exits when a workload or the run overruns."""

    def __init__(
        self, out: dict[str, Any], path: str | None, per: float, total: float
    ) -> None:
        super().__init__(daemon=True, name="bench-watchdog")
        self.out, self.path, self.per = out, path, per
        self.run_deadline = time.monotonic() + total
        self.current = "(startup)"
        self.deadline = time.monotonic() + per
        self.lock = threading.Lock()

    def arm(self, name: str, per: float | None = None) -> None:
        with self.lock:
            self.current = name
            self.deadline = time.monotonic() + (per or self.per)

    def run(self) -> None:
        while True:
            time.sleep(0.5)
            with self.lock:
                now = time.monotonic()
                if now < self.deadline and now < self.run_deadline:
                    continue
                which = "workload" if now >= self.deadline else "whole run"
                msg = f"watchdog: {which} timeout during {self.current!r}"
                print(msg, file=sys.stderr, flush=True)
                self.out["results"].setdefault(self.current, {"error": msg})
                self.out["watchdog"] = msg
                write_json(self.out, self.path)
                os._exit(3)


def write_json(out: dict[str, Any], path: str | None) -> None:
    text = json.dumps(out, indent=1, sort_keys=False, default=str)
    if path:
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    else:
        print(text)


def _error(exc: BaseException) -> dict[str, Any]:
    return {
        "error": f"{type(exc).__name__}: {exc}"[:2000],
        "traceback": traceback.format_exc(limit=6)[-3000:],
    }


def main(argv: list[str] | None = None) -> int:
    global ray, QUICK
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backend", choices=["ember", "ray"], required=True)
    ap.add_argument("--json", help="write results here (default: stdout)")
    ap.add_argument("--only", help="comma-separated workload names")
    ap.add_argument("--quick", action="store_true", help="tiny sizes, smoke test")
    ap.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="per-workload watchdog, seconds (default 180; mn_* figures: their "
        "own, see multinode.FIGURES, unless this is given)",
    )
    ap.add_argument(
        "--total-timeout", type=float, default=900.0, help="whole-run watchdog, seconds"
    )
    ap.add_argument(
        "--multinode",
        action="store_true",
        help="run the mn_* figures against a running cluster: init(address='auto')",
    )
    ap.add_argument("--probe-init", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    QUICK = args.quick

    if args.probe_init:
        _probe_init(args.backend)
        return 0

    suite = list(MULTINODE) if args.multinode else ALL
    names = suite
    if args.only:
        wanted = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in wanted if n not in ALL and n not in MULTINODE]
        if unknown:
            ap.error(f"unknown workload(s): {', '.join(unknown)}")
        other = [n for n in wanted if n not in suite]
        if other:
            ap.error(
                f"{', '.join(other)}: "
                + ("not a multi-node figure" if args.multinode else "needs --multinode")
            )
        names = [n for n in suite if n in wanted]

    out: dict[str, Any] = {
        "backend": args.backend,
        "backend_version": None,
        "python": platform.python_version(),
        "quick": QUICK,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "results": {},
    }
    res = out["results"]
    per = args.timeout or 180.0
    dog = Watchdog(out, args.json, per, args.total_timeout)
    dog.start()

    def record(name: str, fn: Callable[[], Any]) -> None:
        dog.arm(name, args.timeout or MULTINODE.get(name))
        print(f"[{args.backend}] {name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            value = fn()
        except BaseException as exc:
            if isinstance(exc, KeyboardInterrupt):
                raise
            value = _error(exc)
        if name == "idle" and isinstance(value, dict) and "error" not in value:
            res.update({k: v for k, v in value.items() if k in names})
        elif name == "idle":
            res.update({k: value for k in IDLE if k in names})
        else:
            res[name] = value
        shown = value.get("value", value.get("error")) if name != "idle" else "ok"
        print(
            f"[{args.backend}]   -> {shown}  ({time.perf_counter() - t0:.1f}s)",
            file=sys.stderr,
            flush=True,
        )
        if args.json:
            write_json(out, args.json)

    if args.multinode:
        return run_multinode(args, names, out, dog, record)

    # 1. ceilings, before any backend thread or process exists (fork-safe).
    for name in names:
        if name in CEILINGS:
            record(name, globals()["w_" + name])

    # 2. import the backend.
    need_backend = any(n not in CEILINGS for n in names)
    if need_backend:
        dog.arm("import")
        try:
            ray = importlib.import_module(args.backend)
            out["backend_version"] = getattr(ray, "__version__", None)
        except BaseException as exc:
            err = _error(exc)
            for n in names:
                if n not in CEILINGS:
                    res[n] = err
            write_json(out, args.json)
            return 0

    # 3. init/shutdown probes (fresh subprocesses).
    for name in names:
        if name in PROBES:
            record(name, lambda name=name: globals()["w_" + name](args.backend))

    # 3b. spilling (a fresh subprocess with a small store).
    for name in names:
        if name in SPILL:
            record(name, lambda name=name: w_spill(args.backend, name))

    # 4. one live session for the rest.
    live = [n for n in names if n in IDLE or n in LIVE]
    if live:
        dog.arm("init", 120)
        try:
            ray.init(**INIT_KWARGS)
            define()
        except BaseException as exc:
            err = _error(exc)
            for n in live:
                res[n] = err
            write_json(out, args.json)
            return 0
        if any(n in IDLE for n in live):
            record("idle", lambda: w_idle(args.backend))
        for name in live:
            if name in LIVE:
                record(name, globals()["w_" + name])
        dog.arm("shutdown", 60)
        try:
            ray.shutdown()
        except BaseException as exc:
            out["shutdown_error"] = _error(exc)["error"]

    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(out, args.json)
    return 0


def run_multinode(
    args: argparse.Namespace,
    names: list[str],
    out: dict[str, Any],
    dog: Watchdog,
    record: Callable[[str, Callable[[], Any]], None],
) -> int:
    """Attach to the running cluster and run the mn_* figures."""
    global ray
    res = out["results"]
    dog.arm("init(address='auto')", 120)
    try:
        ray = importlib.import_module(args.backend)
        out["backend_version"] = getattr(ray, "__version__", None)
        ray.init(address="auto")
        define()
        out["cluster_nodes"] = _wait_for_far()
    except BaseException as exc:
        err = _error(exc)
        for n in names:
            res[n] = err
        write_json(out, args.json)
        return 0
    for name in names:
        record(name, globals()["w_" + name])
    dog.arm("shutdown", 60)
    try:
        ray.shutdown()
    except BaseException as exc:
        out["shutdown_error"] = _error(exc)["error"]
    out["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    write_json(out, args.json)
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)  # do not wait on backend threads that may linger
