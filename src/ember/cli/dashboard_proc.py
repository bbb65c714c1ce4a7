"""``ember start --head``'s dashboard: start it beside the head, and say where it is.

A dashboard that cannot start (its port taken by another cluster's, a
start failure) is a warning, not a failed head, as in Ray: the cluster runs
without it.  The URL printed carries the token once (``?token=``), as
Jupyter's does; the page trades it for a cookie and drops it from the
address bar.
"""

from __future__ import annotations

import os
from typing import Any

import click

from ember.cli.daemons import Daemon, stop_processes, wait_ready
from ember.common import dashboard_launch
from ember.common.process import DaemonStartError

#: --include-dashboard's values (Ray's flag takes a boolean)
INCLUDE_HELP = (
    "Start the dashboard (a web UI and the job API, behind the cluster token) with "
    "the head; --include-dashboard=false for none."
)


def start_dashboard(
    opts: dict[str, Any], session_dir: str, ip: str, env: dict[str, str]
) -> Daemon | None:
    """Start the head's dashboard (detached) and wait until it serves; None if it did not."""
    if not opts.get("include_dashboard", True):
        return None
    host = opts.get("dashboard_host") or "127.0.0.1"
    port = opts.get("dashboard_port")
    try:
        sock = dashboard_launch.bind(host, port)
    except dashboard_launch.DashboardPortError as exc:
        click.echo(f"Warning: {exc}. The cluster runs without a dashboard.", err=True)
        return None
    url_host = ip if host in ("0.0.0.0", "::", "") else host
    launched = dashboard_launch.launch(
        sock,
        session_dir=session_dir,
        control="unix:" + os.path.join(session_dir, "sockets", "control"),
        url_host=url_host,
        grafana_host=opts.get("grafana_host") or "",
        env=env,
        detached=True,
        wait=True,
    )
    daemon = Daemon(dashboard_launch.NAME, launched.proc, launched.log_path)
    try:
        wait_ready(daemon, launched.ready_fd)
    except DaemonStartError as exc:
        if daemon.proc.poll() is None:
            stop_processes([daemon.record()], force=True)
        click.echo(f"Warning: {exc}. The cluster runs without a dashboard.", err=True)
        return None
    return daemon


def dashboard_lines(record: dict[str, Any], token: str) -> str:
    """What ``ember start --head`` says about the dashboard."""
    url = record.get("dashboard_url")
    if not url:
        return "  (no dashboard: see the warning above, or --include-dashboard)"
    return (
        f"  To open the dashboard (this link carries the token; it is shown once):\n"
        f"    {url}/?token={token}"
    )
