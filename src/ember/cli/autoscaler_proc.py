"""Reading a cluster config file and starting the autoscaler beside a head's daemons."""

from __future__ import annotations

import json
import os

import click
import psutil
import yaml

from ember.autoscaler.config import ClusterConfig, ClusterConfigError, parse_config
from ember.cli.daemons import Daemon, spawn, wait_ready
from ember.common.private_files import ensure_private_dirs, write_private

#: the name of the autoscaler in session records (``ember stop`` stops it first)
AUTOSCALER_NAME = "autoscaler"


def read_config(path: str) -> ClusterConfig:
    """The checked cluster config in the YAML (or JSON) file ``path``."""
    try:
        with open(path, encoding="utf-8") as f:
            raw = yaml.safe_load(f)
    except OSError as exc:
        raise click.ClickException(
            f"Cannot read the cluster config {path}: {exc}"
        ) from exc
    except yaml.YAMLError as exc:
        raise click.ClickException(f"{path} is not valid YAML: {exc}") from exc
    try:
        return parse_config(raw)
    except ClusterConfigError as exc:
        raise click.ClickException(f"{path}: {exc}") from exc


def state_dir(session_dir: str) -> str:
    """The head session's private folder of the autoscaler (config, node records)."""
    return os.path.join(session_dir, "autoscaler")


def start_autoscaler(
    config: ClusterConfig, session_dir: str, address: str, env: dict[str, str]
) -> Daemon:
    """Write the config next to the head (0600) and start ``python -m ember.autoscaler``."""
    folder = ensure_private_dirs(session_dir, "autoscaler")
    path = os.path.join(folder, "config.json")
    write_private(path, json.dumps(config.raw))
    d, r = spawn(
        AUTOSCALER_NAME,
        "ember.autoscaler",
        ["--address", address, "--config", path, "--state-dir", folder],
        env,
        os.path.join(session_dir, "logs", "autoscaler.log"),
        detached=True,
    )
    wait_ready(d, r)
    return d


def stop_autoscalers(records: list[dict[str, object]], *, grace_s: float) -> None:
    """SIGTERM the recorded autoscalers and wait for them alone.

    Not ``daemons.stop_processes``: that also waits for (and then kills) what a
    daemon started, and the nodes a local provider started are children of the
    autoscaler that must outlive it (``ember down`` stops them in order).
    """
    procs = []
    for rec in records:
        try:
            p = psutil.Process(int(rec["pid"]))  # type: ignore[call-overload]
            if abs(p.create_time() - float(rec["create_time"])) > 0.01:  # type: ignore[arg-type]
                continue
            p.terminate()
            procs.append(p)
        except (psutil.NoSuchProcess, psutil.AccessDenied, KeyError, ValueError):
            continue
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
