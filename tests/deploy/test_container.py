"""The image, built and run: a head and two workers in containers run the seed program.

Runs only where a container engine works (docker or podman that can run a
container) and the base image (python:3.11-slim) is present or can be pulled;
it skips saying which of these is missing otherwise.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import uuid

import pytest
from tests.deploy.conftest import ROOT
from tests.integration.cli_cluster import wait_until

pytestmark = pytest.mark.multiprocess

BASE_IMAGE = "python:3.11-slim"


def _engine() -> str:
    """The first container engine that works here; skips with every reason otherwise."""
    reasons = []
    for name in ("docker", "podman"):
        path = shutil.which(name)
        if path is None:
            reasons.append(f"{name}: not installed")
            continue
        try:
            out = subprocess.run(
                [path, "info"], capture_output=True, text=True, timeout=30
            )
        except subprocess.TimeoutExpired:
            reasons.append(f"{name}: 'info' did not answer in 30 s")
            continue
        if out.returncode == 0:
            return path
        last = (out.stderr.strip().splitlines() or ["(no output)"])[-1]
        reasons.append(f"{name}: {last}")
    pytest.skip("no container engine can run containers here: " + "; ".join(reasons))


def _run(
    *args: str, timeout: float = 600, check: bool = True
) -> subprocess.CompletedProcess:
    out = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(args)} failed: {out.stderr[-2000:]}")
    return out


@pytest.fixture(scope="module")
def image():
    engine = _engine()
    have = _run(engine, "image", "inspect", BASE_IMAGE, check=False).returncode == 0
    if (
        not have
        and _run(engine, "pull", BASE_IMAGE, check=False, timeout=300).returncode != 0
    ):
        pytest.skip(
            f"{BASE_IMAGE} is not here and cannot be pulled (no registry reachable)"
        )
    tag = f"ember-test:{uuid.uuid4().hex[:8]}"
    _run(engine, "build", "-t", tag, ROOT, timeout=1200)
    yield engine, tag
    _run(engine, "image", "rm", "-f", tag, check=False)


def test_a_head_and_two_workers_in_containers_run_the_seed_program(image, tmp_path):
    engine, tag = image
    tag_id = uuid.uuid4().hex[:8]
    net, names = (
        f"ember-net-{tag_id}",
        [f"ember-{r}-{tag_id}" for r in ("head", "w1", "w2")],
    )
    token = tmp_path / "ember_token"
    token.write_text(secrets.token_hex(32) + "\n")
    os.chmod(token, 0o644)
    common = [
        "--network",
        net,
        "--shm-size",
        "512m",
        "-e",
        "EMBER_NUM_CPUS=1",
        "-e",
        f"EMBER_OBJECT_STORE_MEMORY={200 * 2**20}",
        "-v",
        f"{token}:/run/secrets/ember_token:ro",
    ]
    _run(engine, "network", "create", net)
    try:
        _run(
            engine,
            "run",
            "-d",
            "--name",
            names[0],
            "--hostname",
            "head",
            *common,
            tag,
            "head",
        )

        def head_ok() -> bool:
            out = _run(
                engine,
                "exec",
                names[0],
                "ember",
                "status",
                "--address",
                "head:6379",
                "--token-file",
                "/run/secrets/ember_token",
                check=False,
                timeout=60,
            )
            return out.returncode == 0

        assert wait_until(head_ok, 120)
        for name in names[1:]:
            _run(
                engine,
                "run",
                "-d",
                "--name",
                name,
                *common,
                "-e",
                "EMBER_HEAD_ADDRESS=head:6379",
                tag,
                "worker",
            )

        def workers_joined() -> bool:
            out = _run(
                engine,
                "exec",
                names[0],
                "ember",
                "status",
                "--address",
                "head:6379",
                "--token-file",
                "/run/secrets/ember_token",
                check=False,
                timeout=60,
            )
            return out.stdout.count("(worker)") == 2

        assert wait_until(workers_joined, 120)
        seed = _run(
            engine,
            "exec",
            names[0],
            "python3",
            "-m",
            "ember.examples.square",
            timeout=300,
        )
        assert "[0, 1, 4, 9]" in seed.stdout
        stopped = _run(engine, "stop", "-t", "30", names[1], timeout=120)
        assert stopped.returncode == 0
    finally:
        for name in names:
            _run(engine, "rm", "-f", name, check=False)
        _run(engine, "network", "rm", net, check=False)
