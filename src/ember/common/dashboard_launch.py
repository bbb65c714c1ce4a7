"""Starting the dashboard beside a head: bind its port here, then start its supervisor.

``ember start --head`` and the embedded cluster of ``ember.init()`` both
start the dashboard this way.  The caller binds the listening socket itself
(:func:`bind`), so it knows the URL at once and a port that is taken is
its error, said before any process starts.  ``ember start --head`` hands
the socket to ``python -m ember.dashboard --supervise --listen-fd N``
(:func:`launch`), which keeps it and passes it on to each dashboard process
it starts (a restarted one serves the same port, and connections made
meanwhile wait in the backlog).  ``init()`` keeps the socket itself and
supervises the dashboard from a thread (``LocalCluster.start_dashboard``),
without waiting for it: it starts in the background.

Port rules, as Ray's: no port given means 8265, or the next free one of the
50 after it (said in the log); a port given that is taken raises
:class:`DashboardPortError` naming it; 0 takes any free port.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from dataclasses import dataclass

from ember.common.private_files import ensure_private_dir, open_private_log

DEFAULT_PORT = 8265
#: with no port given: how many ports after 8265 are tried (Ray's ``--port-retries``)
PORT_RETRIES = 50
#: the dashboard's URL (``http://host:port``) in the session folder, 0600
URL_FILE = "dashboard_url"
#: its name in session records (``ember stop`` stops it)
NAME = "dashboard"


class DashboardPortError(OSError):
    """The dashboard's port could not be bound."""

    def __init__(self, host: str, port: int, why: str) -> None:
        super().__init__(
            f"the dashboard cannot listen on {host}:{port}: {why}. Pick another port "
            "with --dashboard-port (ember start) or init(dashboard_port=...), or turn "
            "the dashboard off (--include-dashboard=false, init(include_dashboard=False))"
        )
        self.host = host
        self.port = port

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.host, self.port, str(self)))


def _try_bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock  # not inheritable: children that serve it get it by pass_fds


def bind(host: str, port: int | None) -> socket.socket:
    """A listening socket on ``host:port`` (see the module's port rules)."""
    if port is not None:
        try:
            return _try_bind(host, port)
        except OSError as exc:
            raise DashboardPortError(host, port, exc.strerror or str(exc)) from exc
    for candidate in range(DEFAULT_PORT, DEFAULT_PORT + PORT_RETRIES + 1):
        try:
            return _try_bind(host, candidate)
        except OSError as exc:
            last = exc
    raise DashboardPortError(
        host,
        DEFAULT_PORT,
        f"it and the {PORT_RETRIES} ports after it are taken ({last.strerror})",
    ) from last


def bound_port(sock: socket.socket) -> int:
    port: int = sock.getsockname()[1]
    return port


def child_args(
    sock: socket.socket,
    *,
    session_dir: str,
    control: str,
    url_host: str,
    grafana_host: str,
) -> list[str]:
    """``python -m ember.dashboard``'s arguments to serve ``sock`` (its fd inherited)."""
    return [
        "--control",
        control,
        "--session-dir",
        session_dir,
        "--listen-fd",
        str(sock.fileno()),
        "--url-host",
        url_host,
        "--grafana-host",
        grafana_host,
    ]


@dataclass
class Launched:
    """A started dashboard supervisor, the address it serves and its log."""

    proc: subprocess.Popen[bytes]
    #: ``host:port``, no scheme (Ray's ``dashboard_url``)
    url: str
    log_path: str
    #: the read end of its ready pipe (-1: not waited for)
    ready_fd: int = -1


def launch(
    sock: socket.socket,
    *,
    session_dir: str,
    control: str,
    url_host: str,
    grafana_host: str,
    env: dict[str, str],
    detached: bool,
    wait: bool,
) -> Launched:
    """Start the supervisor serving ``sock`` (closed here); see the module docstring.

    ``wait``: give it a ready pipe (read it with ``read_ready_line``); else
    it starts in the background and nobody waits.
    """
    log_path = os.path.join(session_dir, "logs", "dashboard.log")
    url = f"{url_host}:{bound_port(sock)}"
    ensure_private_dir(os.path.dirname(log_path))
    r, w = os.pipe() if wait else (-1, -1)
    log = open_private_log(log_path)
    fd = sock.fileno()
    try:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "ember.dashboard",
                "--supervise",
                *child_args(
                    sock,
                    session_dir=session_dir,
                    control=control,
                    url_host=url_host,
                    grafana_host=grafana_host,
                ),
                "--ready-fd",
                str(w),
            ],
            env=env,
            pass_fds=(fd,) if w < 0 else (fd, w),
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=detached,
        )
    except BaseException:
        if r >= 0:
            os.close(r)
        raise
    finally:
        os.close(log)
        if w >= 0:
            os.close(w)
        sock.close()
    return Launched(proc, url, log_path, r)
