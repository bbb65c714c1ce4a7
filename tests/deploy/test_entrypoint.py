"""docker/entrypoint.sh run for real, outside a container: a head and a worker join up.

The containers run exactly this script as their entry point; here each "container"
is a private HOME/TMPDIR folder (tests/integration/cli_cluster.py), so the script's
flag mapping, its health check (`ember status`) and its SIGTERM handling are tested
on any machine, with or without a container engine.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys

import pytest
from tests.deploy.conftest import ENTRYPOINT
from tests.integration.cli_cluster import CLI, clean_up, env_for, make_root, wait_until

pytestmark = pytest.mark.multiprocess

PORT = 23401  # this lane's range: 23400-23499


def _env(root: str, token_file: str, **extra: str) -> dict[str, str]:
    env = env_for(root, EMBER_TOKEN_FILE=token_file, **extra)
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return env


def _status(env: dict[str, str], token_file: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*CLI, "status", "--address", f"127.0.0.1:{PORT}", "--token-file", token_file],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_head_and_a_worker_from_the_entrypoint_run_a_program_and_stop_on_sigterm():
    head_root, worker_root = make_root("emdh"), make_root("emdw")
    token_file = os.path.join(head_root, "ember_token")
    with open(token_file, "w") as f:
        f.write(secrets.token_hex(32) + "\n")
    common = {
        "EMBER_NODE_IP_ADDRESS": "127.0.0.1",
        "EMBER_NUM_CPUS": "1",
        "EMBER_OBJECT_STORE_MEMORY": str(100 * 2**20),
    }
    head_env = _env(head_root, token_file, EMBER_PORT=str(PORT), **common)
    worker_env = _env(
        worker_root,
        token_file,
        EMBER_HEAD_ADDRESS=f"127.0.0.1:{PORT}",
        EMBER_RESOURCES='{"second": 1}',
        **common,
    )
    procs: list[subprocess.Popen] = []
    try:
        head = subprocess.Popen(
            ["sh", ENTRYPOINT, "head"],
            env=head_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(head)
        # the compose health check: `ember status` exits 0 once the head answers
        assert wait_until(lambda: _status(head_env, token_file).returncode == 0, 60)
        worker = subprocess.Popen(
            ["sh", ENTRYPOINT, "worker"],
            env=worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        procs.append(worker)
        assert wait_until(
            lambda: _status(head_env, token_file).stdout.count("(worker)") == 1, 60
        ), _status(head_env, token_file).stdout
        program = (
            "import ember\n"
            "ember.init()\n"
            "@ember.remote(resources={'second': 1})\n"
            "def f(x):\n"
            "    return x * x\n"
            "print(ember.get([f.remote(i) for i in range(4)], timeout=60))\n"
        )
        run = subprocess.run(
            [sys.executable, "-c", program],
            env=head_env,  # in the head's "container": init() joins its cluster
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr
        assert run.stdout.strip().splitlines()[-1] == "[0, 1, 4, 9]"
        for p in (worker, head):  # as `docker stop` does: SIGTERM to the entry point
            p.send_signal(signal.SIGTERM)
            out, _ = p.communicate(timeout=60)
            assert p.returncode == 0, out
            assert "Stopping the ember daemons" in out
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        problems = clean_up(head_root, worker_root)
    assert problems == []


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["head"], {"EMBER_TOKEN_FILE": "/nonexistent/token"}, "no cluster token"),
        (["worker"], {}, "needs EMBER_HEAD_ADDRESS"),
        (["gateway"], {}, "the role is 'head' or 'worker'"),
    ],
)
def test_the_entrypoint_refuses_a_bad_setup_with_a_clear_message(
    args, env, message, tmp_path
):
    token_file = tmp_path / "token"
    token_file.write_text("t" * 64)
    full = {"PATH": os.environ["PATH"], "EMBER_TOKEN_FILE": str(token_file), **env}
    if args == ["gateway"]:
        full["EMBER_ROLE"] = "gateway"
        args = []
    out = subprocess.run(
        ["sh", ENTRYPOINT, *args], env=full, capture_output=True, text=True, timeout=30
    )
    assert out.returncode == 2
    assert message in out.stderr
