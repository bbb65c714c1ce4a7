"""init(address=...): "auto" joins the cluster running on this machine, or raises.

The second driver is a child process running ``import ember as ray`` (on real
Ray the shim on PYTHONPATH, inherited, makes that Ray).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

import ember as ray

NAMESPACE = "init-address"


@pytest.fixture
def no_address_env(monkeypatch):
    for var in ("RAY_ADDRESS", "EMBER_ADDRESS"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.cluster_only("which cluster init() connects to")
def test_auto_with_no_cluster_running_raises_connection_error(
    shutdown_only, no_address_env
):
    with pytest.raises(ConnectionError, match="Could not find any running"):
        ray.init(address="auto")
    assert not ray.is_initialized()


@pytest.mark.cluster_only("a second driver process")
def test_a_second_driver_joins_with_auto_and_sees_the_named_actor(
    shutdown_only, no_address_env
):
    ray.init(num_cpus=1, namespace=NAMESPACE)

    @ray.remote
    class Keeper:
        def __init__(self):
            self.n = 0

        def incr(self):
            self.n += 1
            return self.n

    keeper = Keeper.options(name="keeper").remote()
    assert ray.get(keeper.incr.remote()) == 1
    code = textwrap.dedent(
        f"""
        import ember as ray
        ray.init(address="auto", namespace={NAMESPACE!r})
        print("value", ray.get(ray.get_actor("keeper").incr.remote(), timeout=60))
        ray.shutdown()
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert "value 2" in out.stdout
    assert "Connecting to" in out.stderr  # Ray: "Connecting to existing Ray cluster"
    assert ray.get(keeper.incr.remote()) == 3
