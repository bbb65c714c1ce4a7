"""``AutoscalingCluster``: a head with an autoscaler on this machine, for tests (Ray's).

Example::

    from ember.cluster_utils import AutoscalingCluster

    cluster = AutoscalingCluster(
        head_resources={"CPU": 1},
        worker_node_types={
            "gpu_node": {"resources": {"CPU": 1, "GPU": 1}, "min_workers": 0,
                         "max_workers": 2, "node_config": {}},
        },
        idle_timeout_minutes=0.1,
    )
    cluster.start()          # ember.init(address="auto") joins it
    ...
    cluster.shutdown()

It runs ``ember start --head --autoscaling-config`` with a generated config
whose provider is ``local``: worker nodes are node daemons on this machine.
The autoscaler ticks every second (``EMBER_AUTOSCALER_UPDATE_INTERVAL_S``).
Unlike Ray's, ``start`` and ``shutdown`` touch only this cluster, never
other ember processes of the user, and the head takes a free port.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import tempfile
import warnings
from typing import Any

from ember.autoscaler.config import parse_config
from ember.common.private_files import write_private

__all__ = ["AutoscalingCluster"]

HEAD_TYPE = "ray.head.default"
#: the generated config's defaults (Ray's fake multi-node example's shape)
BASE_CONFIG: dict[str, Any] = {
    "cluster_name": "fake-multinode",
    "max_workers": 8,
    "upscaling_speed": 1.0,
    "idle_timeout_minutes": 1.0,
    "provider": {"type": "local"},
    "head_node_type": HEAD_TYPE,
}


class AutoscalingCluster:
    """A local cluster whose worker nodes come and go with the autoscaler.

    Args:
        head_resources: the head node's resources, ``CPU`` included.
        worker_node_types: ``available_node_types`` entries for worker nodes
            (``resources``, ``min_workers``, ``max_workers``, ``node_config``).
        autoscaler_v2: accepted for Ray compatibility (ember has one autoscaler).
        config_kwargs: cluster config keys merged into the generated config
            (``idle_timeout_minutes``, ``max_workers``, ``upscaling_speed``, ...).
    """

    def __init__(
        self,
        head_resources: dict[str, Any],
        worker_node_types: dict[str, Any],
        autoscaler_v2: bool = False,
        **config_kwargs: Any,
    ) -> None:
        self._head_resources = dict(head_resources)
        config = copy.deepcopy(BASE_CONFIG)
        types = copy.deepcopy(worker_node_types)
        types[HEAD_TYPE] = {
            "resources": dict(head_resources),
            "node_config": {},
            "max_workers": 0,
        }
        config["available_node_types"] = types
        config.update(config_kwargs)
        self._config = config
        self._checked = parse_config(config)  # a bad config fails here
        self._autoscaler_v2 = autoscaler_v2
        self._folder = ""
        self._config_path = ""
        self.address = ""

    def start(
        self,
        _system_config: dict[str, Any] | None = None,
        override_env: dict[str, str] | None = None,
    ) -> None:
        """Start the head and its autoscaler; ``ember.init(address="auto")`` then joins.

        Raises:
            RuntimeError: ``ember start`` failed (the end of its output attached).
        """
        if _system_config:
            warnings.warn(
                "AutoscalingCluster.start(_system_config=...) is not applied by ember",
                stacklevel=2,
            )
        self._folder = tempfile.mkdtemp(prefix="ember-autoscaling-")
        os.chmod(self._folder, 0o700)
        self._config_path = os.path.join(self._folder, "cluster.yaml")
        write_private(self._config_path, json.dumps(self._config))
        r = dict(self._head_resources)
        cmd = [sys.executable, "-m", "ember.cli.main", "start", "--head", "--port", "0"]
        cmd += ["--node-ip-address", "127.0.0.1"]
        cmd += ["--autoscaling-config", self._config_path]
        if "CPU" in r:
            cmd += ["--num-cpus", str(int(r.pop("CPU")))]
        if "GPU" in r:
            cmd += ["--num-gpus", str(int(r.pop("GPU")))]
        if "object_store_memory" in r:
            cmd += ["--object-store-memory", str(int(r.pop("object_store_memory")))]
        if r:
            cmd += ["--resources", json.dumps(r)]
        env = dict(os.environ)
        env.setdefault("EMBER_AUTOSCALER_UPDATE_INTERVAL_S", "1")
        env.update(override_env or {})
        done = subprocess.run(cmd, env=env, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(
                f"ember start --head failed ({done.returncode}):\n{done.stderr[-3000:]}"
            )
        from ember.cli.up_cmd import running_heads

        heads = running_heads(self._checked.cluster_name)
        if heads:
            self.address = str(heads[-1]["control_address"]).removeprefix("tcp:")

    def shutdown(self) -> None:
        """Stop the autoscaler, its worker nodes and the head."""
        from ember.cli.up_cmd import down_session, running_heads

        for rec in running_heads(self._checked.cluster_name):
            if self.address and rec.get("control_address") != f"tcp:{self.address}":
                continue
            down_session(rec, self._checked, grace_s=10)
        if self._folder:
            for name in os.listdir(self._folder):
                os.unlink(os.path.join(self._folder, name))
            os.rmdir(self._folder)
            self._folder = ""
