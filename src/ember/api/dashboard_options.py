"""init()'s dashboard: its options, starting it with the embedded cluster, its URL.

``init()`` starts the embedded cluster's dashboard in the background
(``LocalCluster.start_dashboard``: the port is bound here, the process is
not waited for), so it costs ``init()`` a bind and a spawn.  Ray's options:
``include_dashboard`` (None or True: start it; False: none),
``dashboard_host`` (127.0.0.1) and ``dashboard_port`` (None: 8265 or the
next free port of the 50 after it; a given port that is taken warns, and
the cluster runs without a dashboard; 0: any free port).
``EMBER_INCLUDE_DASHBOARD=0`` makes False the default (a CI machine, a test
suite: the dashboard process costs ~0.9 s of CPU and ~50 MB per cluster).  The context's
``dashboard_url`` is ``host:port`` without a scheme, as Ray's; a driver that
joins a cluster reads it from the control service's KV (namespace
``dashboard``, key ``url``: the dashboard writes it when it serves).
"""

from __future__ import annotations

import logging
import os
import warnings
from typing import Any, NamedTuple

from ember.api.local_cluster import LocalCluster
from ember.common.dashboard_launch import DashboardPortError
from ember.protocol.messages import KvGetReply, KvGetRequest
from ember.rpc.errors import RpcError

logger = logging.getLogger(__name__)

#: ``0``/``false``: init() starts no dashboard unless include_dashboard=True
INCLUDE_ENV = "EMBER_INCLUDE_DASHBOARD"
KV_NAMESPACE = "dashboard"
KV_KEY = b"url"

_url = ""


class DashboardOptions(NamedTuple):
    host: str
    port: int | None


def check(include: Any, host: Any, port: Any) -> DashboardOptions | None:
    """init()'s three options checked; None when no dashboard is wanted."""
    if include is not None and not isinstance(include, bool):
        raise TypeError(f"include_dashboard must be a bool or None, not {include!r}")
    if not isinstance(host, str) or not host:
        raise TypeError(f"dashboard_host must be a host name or address, not {host!r}")
    if port is not None and (
        isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535
    ):
        raise ValueError(
            f"dashboard_port must be a port number (0-65535), not {port!r}"
        )
    if include is None and os.environ.get(INCLUDE_ENV, "").lower() in ("0", "false"):
        include = False  # the machine's default (CI, test suites): no dashboard
    return None if include is False else DashboardOptions(host, port)


def start(cluster: LocalCluster, options: DashboardOptions | None) -> str:
    """Start ``cluster``'s dashboard; its ``host:port`` ("" if none)."""
    global _url
    if options is None:
        return ""
    try:
        _url = cluster.start_dashboard(options.host, options.port)
    except DashboardPortError as exc:
        warnings.warn(f"{exc}. The cluster runs without a dashboard.", stacklevel=4)
        return ""
    return _url


def joined(cw: Any) -> None:
    """Remember the dashboard URL of the cluster ``cw`` joined ("" if it has none)."""
    global _url
    try:
        reply = cw.run(
            cw.control.call(
                "control.kv_get", KvGetRequest(namespace=KV_NAMESPACE, key=KV_KEY)
            ),
            timeout=10,
        )
    except (RpcError, OSError, TimeoutError) as exc:  # a URL is worth no failed init()
        logger.debug("no dashboard URL from the cluster: %s", exc)
        return
    value = reply[0].value if isinstance(reply[0], KvGetReply) else None
    _url = value.decode().strip().removeprefix("http://") if value else ""


def current_url() -> str:
    """``host:port`` of this driver's cluster's dashboard ("" if none)."""
    return _url


def view() -> str:
    """`` View the dashboard at http://...`` (as Ray's init() says), or ""."""
    return f" View the dashboard at http://{_url}" if _url else ""


def forget() -> None:
    global _url
    _url = ""
