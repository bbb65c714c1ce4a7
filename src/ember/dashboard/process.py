"""The dashboard process: serve the app on its socket, say where, restart when it dies.

``python -m ember.dashboard --supervise ...`` (what ``ember start --head``
and ``ember.init()`` run, :mod:`ember.common.dashboard_launch`) is a
:class:`~ember.common.supervisor.ChildSupervisor` holding the listening
socket; its child, ``python -m ember.dashboard --listen-fd N ...``, serves
the aiohttp application of :func:`ember.dashboard.app.make_app` on that
socket.  When serving, the child writes its URL (``http://host:port``) to
``<session>/dashboard_url`` (0600) and on its ready pipe, which the
supervisor passes on.  SIGTERM stops the child (and the supervisor, which
then removes that file).  The child reads the cluster only through RPC
(``ctx.links``), so it can start, die and start again on its own, and it
serves while the control service restarts (the API answers 503 meanwhile).
Without ``--listen-fd`` the process binds ``--host``/``--port`` itself.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
from typing import TYPE_CHECKING

from ember.common.aio import new_event_loop
from ember.common.dashboard_launch import URL_FILE, bind, bound_port
from ember.common.private_files import write_private
from ember.common.process import (
    DaemonStartError,
    die_with_parent,
    setup_daemon_logging,
    signal_ready,
    token_from_env,
)
from ember.common.supervisor import ChildSupervisor, strip_supervise

if TYPE_CHECKING:
    from ember.dashboard.context import DashboardContext

logger = logging.getLogger(__name__)


def url_path(session_dir: str) -> str:
    return os.path.join(session_dir, URL_FILE)


def _socket(args: argparse.Namespace) -> socket.socket:
    if args.listen_fd >= 0:
        return socket.socket(fileno=args.listen_fd)
    return bind(args.host, args.port)


async def _serve(args: argparse.Namespace, sock: socket.socket, token: str) -> None:
    # Imported here: the supervisor (same module) never loads aiohttp.
    from aiohttp import web

    from ember.dashboard.app import make_app
    from ember.dashboard.context import DashboardContext

    ctx = DashboardContext(
        control_address=args.control,
        token=token,
        session_dir=args.session_dir,
        grafana_host=args.grafana_host,
    )
    app = make_app(ctx)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await web.SockSite(runner, sock).start()
        url = f"http://{args.url_host or args.host}:{bound_port(sock)}"
        write_private(url_path(args.session_dir), url + "\n")
        await _publish(
            ctx, url
        )  # before the ready line: a driver that joins next finds it
        signal_ready(args.ready_fd, url)
        logger.info("the dashboard serves at %s", url)
        await stop.wait()
    finally:
        await runner.cleanup()
        ctx.links.close()


async def _publish(ctx: DashboardContext, url: str) -> None:
    """Put the URL in the control service's KV, for drivers that join the cluster."""
    from ember.dashboard.links import ClusterUnavailable
    from ember.protocol.messages import KvPutRequest

    req = KvPutRequest(namespace="dashboard", key=b"url", value=url.encode())
    try:
        await ctx.links.control("control.kv_put", req)
    except ClusterUnavailable as exc:
        logger.warning("could not record the dashboard's URL in the cluster: %s", exc)


def serve(args: argparse.Namespace) -> None:
    """Serve until SIGTERM (the child)."""
    die_with_parent()
    setup_daemon_logging("dashboard")
    token = token_from_env().decode()
    sock = _socket(args)
    loop = new_event_loop()
    try:
        loop.run_until_complete(_serve(args, sock, token))
    finally:
        loop.close()


def supervise(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the dashboard as a child under a supervisor; the exit code."""
    die_with_parent()
    setup_daemon_logging("dashboard-supervisor")
    token_from_env()  # no token, no dashboard: fail here, not in every child
    child_argv = strip_supervise(argv)
    sock = None
    fd = args.listen_fd
    if fd < 0:
        sock = bind(args.host, args.port)
        fd = sock.fileno()
        child_argv += ["--listen-fd", str(fd)]
    log_path = os.path.join(args.session_dir, "logs", "dashboard.log")
    sup = ChildSupervisor(
        "ember.dashboard", "dashboard", child_argv, log_path, pass_fds=(fd,)
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, sup.stop)
    try:
        try:
            url = sup.start()
        except DaemonStartError as exc:
            logger.error("%s", exc)
            return 1
        signal_ready(args.ready_fd, url)
        return sup.run()
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(url_path(args.session_dir))
        if sock is not None:
            sock.close()
