"""The autoscaler process: connects to the control service and ticks until SIGTERM.

Started beside the control service by ``ember up`` or ``ember start --head
--autoscaling-config FILE`` (``python -m ember.autoscaler``), as DESIGN.md's
head services are: its own process, reading the cluster through the control
service's RPCs, so that a slow provider call (ssh, the Kubernetes API) never
stalls the control service and either can fail and restart on its own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal

from ember.autoscaler.config import ClusterConfig, parse_config
from ember.autoscaler.monitor import Autoscaler
from ember.autoscaler.providers import make_provider
from ember.common.aio import new_event_loop
from ember.common.config import Config
from ember.common.private_files import read_private
from ember.common.process import setup_daemon_logging, signal_ready, token_from_env
from ember.protocol.messages import SCHEMA
from ember.rpc.connection import Connection, connect
from ember.rpc.reconnecting import ReconnectingConnection

logger = logging.getLogger(__name__)

#: seconds between ticks (Ray's AUTOSCALER_UPDATE_INTERVAL_S is read too)
INTERVAL_ENV = "EMBER_AUTOSCALER_UPDATE_INTERVAL_S"
DEFAULT_INTERVAL_S = 5.0


def update_interval_s() -> float:
    raw = os.environ.get(INTERVAL_ENV) or os.environ.get("AUTOSCALER_UPDATE_INTERVAL_S")
    if not raw:
        return DEFAULT_INTERVAL_S
    try:
        value = float(raw)
    except ValueError as exc:
        raise SystemExit(f"{INTERVAL_ENV}={raw!r} is not a number of seconds") from exc
    if not 0.05 <= value <= 3600:
        raise SystemExit(
            f"{INTERVAL_ENV}={raw!r} must be between 0.05 and 3600 seconds"
        )
    return value


def load_config(path: str) -> ClusterConfig:
    """The config ``ember up`` wrote next to the head (JSON, 0600)."""
    text = read_private(path)
    if text is None:
        raise SystemExit(f"no autoscaling config at {path}")
    return parse_config(json.loads(text))


async def _main(address: str, config_path: str, state_dir: str, ready_fd: int) -> None:
    token = token_from_env()
    config = load_config(config_path)
    interval = update_interval_s()
    stopped = asyncio.Event()

    async def reconnect() -> Connection:
        return await connect(address, token=token, schema=SCHEMA)

    conn = ReconnectingConnection(
        await reconnect(),
        reconnect,
        what="the control service",
        give_up_after_s=Config.from_env().head_reconnect_timeout_s,
        on_give_up=lambda why: stopped.set(),
    )
    provider = make_provider(
        config, address=address, token=token.decode(), state_dir=state_dir
    )
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopped.set)
    signal_ready(ready_fd, "autoscaler ready")
    logger.info(
        "autoscaling %s with the %s provider, every %.1f s",
        config.cluster_name,
        config.provider["type"],
        interval,
    )
    try:
        await Autoscaler(config, provider, conn).run(interval, stopped)
    finally:
        conn.close()


def run(address: str, config_path: str, state_dir: str, ready_fd: int = -1) -> None:
    """Serve until SIGTERM or until the control service is gone for good."""
    setup_daemon_logging("autoscaler")
    loop = new_event_loop()
    try:
        loop.run_until_complete(_main(address, config_path, state_dir, ready_fd))
    finally:
        loop.close()
