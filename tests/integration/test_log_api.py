"""list_logs / get_log / ``ember logs`` against a real two-node cluster."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading

import pytest
from tests.conftest import live_children, wait_until

import ember
from ember.cluster_utils import Cluster
from ember.common import session
from ember.util.state import get_log, list_logs

pytestmark = pytest.mark.multiprocess


@pytest.fixture(scope="module")
def two_nodes():
    saved = {v: os.environ.pop(v, None) for v in (session.ADDRESS_ENV, "RAY_ADDRESS")}
    c = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1}, shutdown_at_exit=False
    )
    other = c.add_node(num_cpus=1, resources={"other": 1})
    c.wait_for_nodes()
    c.connect()
    yield c, other
    if ember.is_initialized():
        ember.shutdown()
    c.shutdown()
    for k, v in saved.items():
        if v is not None:
            os.environ[k] = v
    assert wait_until(lambda: not live_children())


@ember.remote(resources={"other": 1})
class Talker:
    def say(self, out: str, err: str = "") -> dict:
        print(out)
        if err:
            print(err, file=sys.stderr)
        ctx = ember.get_runtime_context()
        return {
            "pid": os.getpid(),
            "node": ctx.get_node_id(),
            "actor": ctx.get_actor_id(),
        }


@pytest.fixture(scope="module")
def talker(two_nodes):
    a = Talker.remote()
    info = ember.get(a.say.remote("first-words-1001", "first-err-1002"), timeout=60)
    return a, info


def text_of(chunks) -> str:
    return "".join(chunks)


def test_list_logs_of_each_node(two_nodes, talker):
    c, other = two_nodes
    _, info = talker
    assert info["node"] == other.node_id
    found = list_logs(node_id=other.node_id)
    assert any(
        f.endswith(f"-ffffffff-{info['pid']}.out") for f in found["worker_out"]
    ), found
    assert any(
        f.endswith(f"-ffffffff-{info['pid']}.err") for f in found["worker_err"]
    ), found
    assert found["node"] == ["node.log"]
    head = list_logs(node_id=c.head_node.node_id, glob_filter="node*")
    assert head == {"node": ["node.log"]}
    by_ip = list_logs(node_ip="127.0.0.1", glob_filter="node.log")  # the head first
    assert by_ip == {"node": ["node.log"]}
    with pytest.raises(AssertionError):
        list_logs()


def test_get_log_by_actor_pid_and_filename(two_nodes, talker):
    _, other = two_nodes
    _, info = talker
    assert "first-words-1001" in text_of(get_log(actor_id=info["actor"]))
    assert "first-err-1002" in text_of(get_log(actor_id=info["actor"], suffix="err"))
    assert "first-err-1002" in text_of(
        get_log(node_id=other.node_id, pid=info["pid"], suffix="err")
    )
    name = next(
        f
        for f in list_logs(node_id=other.node_id)["worker_out"]
        if f.endswith(f"-{info['pid']}.out")
    )
    whole = text_of(get_log(node_id=other.node_id, filename=name))
    last = text_of(get_log(node_id=other.node_id, filename=name, tail=1))
    assert whole.endswith(last)
    assert last.count("\n") == 1
    raw = b"".join(get_log(node_id=other.node_id, filename=name, encoding=None))
    assert raw.decode() == whole


def test_get_log_errors(two_nodes, talker):
    _c, other = two_nodes
    with pytest.raises(FileNotFoundError):
        text_of(get_log(node_id=other.node_id, filename="no-such-file.log"))
    with pytest.raises(FileNotFoundError):
        text_of(get_log(node_id=other.node_id, pid=1, suffix="out"))
    with pytest.raises(ValueError, match="Suffix"):
        text_of(get_log(node_id=other.node_id, pid=1, suffix="log"))
    with pytest.raises(ValueError):
        text_of(get_log(filename="node.log"))  # no node


def test_only_files_inside_the_logs_folder_are_served(two_nodes, tmp_path):
    _c, other = two_nodes
    secret = tmp_path / "secret.txt"
    secret.write_text("not-for-the-cluster\n")
    logs = os.path.join(other.session_dir, "logs")
    os.symlink(secret, os.path.join(logs, "bait.log"))
    try:
        for name in ("../../../../etc/passwd", str(secret), "bait.log", "../logs/../x"):
            with pytest.raises(ValueError):
                text_of(get_log(node_id=other.node_id, filename=name))
        listed = [
            f for group in list_logs(node_id=other.node_id).values() for f in group
        ]
        assert "bait.log" not in listed
    finally:
        os.unlink(os.path.join(logs, "bait.log"))


def test_follow_yields_what_is_appended(two_nodes, talker):
    actor, info = talker
    chunks = get_log(actor_id=info["actor"], tail=1, follow=True, _interval=0.05)
    try:
        first = next(chunks)
        assert first.count("\n") == 1
        ember.get(actor.say.remote("appended-later-2002"))
        seen = ""
        while "appended-later-2002" not in seen:
            seen += next(chunks)
    finally:
        chunks.close()


def ember_cli(c: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ember.cli.main", "logs", *args, "--address", c.address],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, session.TOKEN_ENV: c.token},
    )


def test_ember_logs_lists_and_prints(two_nodes, talker):
    c, other = two_nodes
    _, info = talker
    p = ember_cli(c, "--node-id", other.node_id)  # `ember logs` = `ember logs cluster`
    assert p.returncode == 0, p.stderr
    assert f"Node ID: {other.node_id}" in p.stdout
    assert "worker_out:" in p.stdout
    assert f"-{info['pid']}.out" in p.stdout
    p = ember_cli(
        c, "cluster", "node.log", "--tail", "3"
    )  # one match: printed (head node)
    assert p.returncode == 0, p.stderr
    assert "truncated to last 3 lines" in p.stdout
    assert len([ln for ln in p.stdout.splitlines()[2:] if ln]) <= 3
    p = ember_cli(c, "actor", "--id", info["actor"], "--tail", "-1")
    assert p.returncode == 0, p.stderr
    assert "first-words-1001" in p.stdout, p.stderr
    p = ember_cli(
        c, "worker", "--pid", str(info["pid"]), "--node-id", other.node_id, "--err"
    )
    assert p.returncode == 0, p.stderr
    assert "first-err-1002" in p.stdout, p.stderr
    p = ember_cli(c, "cluster", "../../etc/passwd", "--node-id", other.node_id)
    assert p.returncode == 0
    assert "worker_out" not in p.stdout
    p = ember_cli(c, "actor", "--id", "00" * 16)
    assert p.returncode != 0
    assert "Error" in p.stderr


def test_ember_logs_follow(two_nodes, talker):
    c, _ = two_nodes
    actor, info = talker
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ember.cli.main",
            "logs",
            "actor",
            "--id",
            info["actor"],
            "--follow",
            "--tail",
            "1",
            "--interval",
            "0.05",
            "--address",
            c.address,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, session.TOKEN_ENV: c.token},
    )
    lines: queue.Queue[str] = queue.Queue()
    reader = threading.Thread(
        target=lambda: [lines.put(ln) for ln in proc.stdout], daemon=True
    )  # type: ignore[union-attr]
    reader.start()

    def wait_for_line(marker: str) -> None:
        while True:
            line = lines.get(timeout=60)
            if marker in line:
                return

    try:
        wait_for_line("truncated to last 1 lines")
        ember.get(actor.say.remote("cli-follow-3003"))
        wait_for_line("cli-follow-3003")
    finally:
        proc.kill()
        proc.wait(30)
        reader.join(30)


@ember.remote  # (the Talker holds the "other" node's resource)
def noisy_task(text: str) -> int:
    print(text)
    return os.getpid()


def test_get_log_of_a_task_finds_its_worker_through_the_task_events(two_nodes):
    c, _ = two_nodes
    ref = noisy_task.remote("task-said-4004")
    pid = ember.get(ref, timeout=60)
    task_id = ref.task_id().hex()

    def found() -> bool:
        try:
            return "task-said-4004" in text_of(get_log(task_id=task_id))
        except FileNotFoundError:  # the task's events are sent in batches
            return False

    assert wait_until(found, 60)
    p = ember_cli(c, "task", "--id", task_id, "--tail", "-1")
    assert p.returncode == 0, p.stderr
    assert "task-said-4004" in p.stdout
    assert pid > 0
    with pytest.raises(FileNotFoundError):
        text_of(get_log(task_id="ab" * 24))
