"""The Redis backend: a head whose state lives in a real ``redis-server``.

``ember start --head --storage redis://...``: the control service survives a
``kill -9`` with its state read back from Redis, survives a restart of Redis
itself (writes made while Redis is down reach it when it is back), and a new
head started against the same Redis (another session, another port: what a
head on another machine would be) takes the actors over.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest
from tests.integration.cli_cluster import clean_up, make_root, wait_until
from tests.integration.test_head_restart import Head

# slow: the default run stays under 15 minutes on 2 cores (.ci/run runs -m slow)
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

REDIS = shutil.which("redis-server")


class Redis:
    """A private redis-server with an append-only file, restartable on its port."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS is not None
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder,
             "--appendonly", "yes", "--save", "", "--daemonize", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        assert wait_until(self._answers, 30), "redis-server did not start"

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def actors_stored(self) -> int:
        import redis as redis_py

        try:
            return int(redis_py.Redis(port=self.port).hlen("ember:actors"))
        except redis_py.ConnectionError:
            return -1

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.proc = None


@pytest.fixture
def redis(tmp_path) -> Iterator[Redis]:
    if REDIS is None:
        pytest.skip("no redis-server here (.ci/run installs the redis-server package)")
    r = Redis(str(tmp_path))
    r.start()
    try:
        yield r
    finally:
        r.stop()


def _py(h: Head, code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=h.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


CREATE = """
import os, ember as ray
ray.init(address="auto", namespace="rd")
@ray.remote
class Box:
    def __init__(self, v):
        self.v = v
    def get(self):
        return self.v, os.getpid()
a = Box.options(name="{name}", lifetime="detached").remote("{name}")
print("GOT", *ray.get(a.get.remote()), flush=True)
"""

READ = """
import ember as ray
ray.init(address="auto", namespace="rd")
print("GOT", *ray.get(ray.get_actor("{name}").get.remote(), timeout=90), flush=True)
"""


def _start(h: Head, redis: Redis) -> None:
    out = h.cli(
        "start", "--head", "--port", "0", "--node-ip-address", "127.0.0.1",
        "--num-cpus", "2", "--storage", redis.url,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr


def _kill_control(h: Head) -> None:
    child = h.control_child()
    assert child is not None
    child.send_signal(signal.SIGKILL)
    assert wait_until(
        lambda: (p := h.control_child()) is not None and p.pid != child.pid, 30
    )
    assert wait_until(lambda: h.cli("status").returncode == 0, 60)


def test_state_in_redis_survives_control_kills_and_a_redis_restart(tmp_path, redis):

    root = make_root("emrd")
    h = Head(root)
    try:
        _start(h, redis)
        status = h.cli("status")
        assert redis.url in status.stdout, status.stdout
        first = _py(h, CREATE.format(name="early"))
        assert first.returncode == 0, first.stderr
        early = first.stdout.split()[1:]
        _kill_control(h)
        again = _py(h, READ.format(name="early"))
        assert again.returncode == 0, again.stderr
        assert again.stdout.split()[1:] == early  # the same live actor
        # Redis restarts; what the control service writes meanwhile is kept.
        redis.stop()
        late = _py(h, CREATE.format(name="late"))
        assert late.returncode == 0, late.stderr
        redis.start()
        # The writes queued while Redis was down reach it once it is back.
        assert wait_until(lambda: redis.actors_stored() == 2, 30)
        _kill_control(h)
        for name in ("early", "late"):
            got = _py(h, READ.format(name=name))
            assert got.returncode == 0, got.stderr
            assert got.stdout.split()[1] == name
    finally:
        left = clean_up(root)
    assert not left, left


def test_a_new_head_on_the_same_redis_takes_the_actors_over(redis):

    roots = [make_root("emrd"), make_root("emrd")]
    try:
        old = Head(roots[0])
        _start(old, redis)
        made = _py(old, CREATE.format(name="kept"))
        assert made.returncode == 0, made.stderr
        assert old.cli("stop").returncode == 0
        new = Head(roots[1])  # another session, another port, another "machine"
        _start(new, redis)
        got = _py(new, READ.format(name="kept"))
        assert got.returncode == 0, got.stderr
        assert got.stdout.split()[1] == "kept"
    finally:
        left = clean_up(*roots)
    assert not left, left
    assert not os.path.exists(roots[0])
