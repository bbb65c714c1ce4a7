"""prometheus.yml and the target discovery file that the control service keeps current.

Theory of operation.  Prometheus learns ember's endpoints from a file-based
service discovery (``file_sd_configs``) file: a JSON list of target groups,
one per endpoint (the control service's, then every live node daemon's),
each with labels naming what it is.  The control service rewrites the file
whenever its node table changes (:meth:`DiscoveryFile.update`, called where
nodes register and are lost).  Each write goes to a temporary file renamed
over the old one (:func:`~ember.common.private_files.write_private`), so
Prometheus, which watches the folder, never reads half a file; a rewrite with
the same content is skipped.  Every endpoint wants the cluster token, so the
scrape job sends it as a bearer token read from the token file
(``authorization.credentials_file``): the token is never copied into the
configuration.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from ember.common.private_files import write_private

logger = logging.getLogger(__name__)

#: the discovery file's name, in the session folder (Ray's name and place)
DISCOVERY_FILE = "prom_metrics_service_discovery.json"
#: the scrape job (the ``job`` label of every series)
JOB_NAME = "ember"
#: Ray's default scrape interval
DEFAULT_SCRAPE_INTERVAL_S = 10.0
#: Prometheus's own ceiling for a scrape's timeout
MAX_SCRAPE_TIMEOUT_S = 10.0
#: listen addresses that name no host to connect to
WILDCARDS = frozenset({"", "0.0.0.0", "::", "[::]"})


class NodeEndpoint(Protocol):
    """What the discovery file needs of a node (``protocol.messages.NodeInfo``)."""

    node_id: bytes
    ip: str
    alive: bool
    is_head: bool
    metrics_port: int


@dataclass(frozen=True)
class Target:
    """One metrics endpoint: ``host:port`` and the labels Prometheus adds to its series."""

    host: str
    port: int
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        return host_port(self.host, self.port)


def host_port(host: str, port: int) -> str:
    """``host:port``, with an IPv6 address in brackets."""
    if ":" in host and not host.startswith("["):
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def control_target(host: str, port: int) -> Target:
    """The control service's endpoint."""
    return Target(host, port, {"ember_component": "control"})


def node_targets(nodes: Iterable[NodeEndpoint]) -> list[Target]:
    """The endpoints of the live nodes that export metrics (``metrics_port`` set)."""
    out = []
    for n in nodes:
        if not n.alive or not n.metrics_port or not n.ip:
            continue
        labels = {
            "ember_component": "node",
            "ember_node_id": n.node_id.hex(),
            "ember_head": "true" if n.is_head else "false",
        }
        out.append(Target(n.ip, n.metrics_port, labels))
    return out


def discovery_content(targets: Iterable[Target]) -> str:
    """The file_sd JSON for ``targets`` (one group each, sorted by address)."""
    groups = [
        {"targets": [t.address], "labels": dict(sorted(t.labels.items()))}
        for t in sorted(targets, key=lambda t: t.address)
    ]
    return json.dumps(groups, indent=1) + "\n"


def _duration(seconds: float) -> str:
    """A Prometheus duration (``10s``, ``1500ms``)."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"a scrape interval must be positive, got {seconds!r} s")
    return f"{ms // 1000}s" if ms % 1000 == 0 else f"{ms}ms"


def _quoted(text: str) -> str:
    """A YAML double-quoted scalar (a JSON string is one)."""
    return json.dumps(text)


def prometheus_yml(
    discovery_path: str,
    token_file: str,
    *,
    scrape_interval_s: float = DEFAULT_SCRAPE_INTERVAL_S,
    session_name: str = "",
) -> str:
    """The text of ``prometheus.yml``: one job scraping every discovered target.

    ``token_file`` holds the cluster token, which every endpoint requires.
    """
    interval = _duration(scrape_interval_s)
    timeout = _duration(min(scrape_interval_s, MAX_SCRAPE_TIMEOUT_S))
    about = f" (session {session_name})" if session_name else ""
    return f"""# Written by ember for its cluster{about}.
# Start Prometheus with: prometheus --config.file=<this file>
# The targets (the control service and every node daemon) are read from the
# discovery file below, which the head rewrites as nodes join and leave.
global:
  scrape_interval: {interval}
  evaluation_interval: {interval}
  scrape_timeout: {timeout}

scrape_configs:
  - job_name: {_quoted(JOB_NAME)}
    # Every ember endpoint requires the cluster token.
    authorization:
      type: Bearer
      credentials_file: {_quoted(token_file)}
    file_sd_configs:
      - files:
          - {_quoted(discovery_path)}
        refresh_interval: {interval}
"""


class DiscoveryFile:
    """The discovery file of one cluster, rewritten when its endpoints change.

    Owned by the control service (one writer); :meth:`update` runs on its loop.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.control: Target | None = None
        self._written: str | None = None

    def set_control(self, host: str, port: int) -> None:
        """Record the control service's own endpoint (written with the next update).

        A wildcard ``host`` (it listens on every interface) is written as the head
        node's IP address once the head registered, else as 127.0.0.1.
        """
        self.control = control_target(host, port) if port else None

    def update(self, nodes: Iterable[NodeEndpoint]) -> bool:
        """Write the endpoints of ``nodes`` plus the control's; whether the file changed.

        A failed write is logged, not raised: it must not fail a node's registration.
        """
        nodes = list(nodes)
        targets = node_targets(nodes)
        if self.control is not None:
            c = self.control
            if c.host in WILDCARDS:
                head = next((n.ip for n in nodes if n.is_head and n.alive and n.ip), "")
                c = Target(head or "127.0.0.1", c.port, c.labels)
            targets.append(c)
        text = discovery_content(targets)
        if text == self._written:
            return False
        try:
            write_private(self.path, text)
        except OSError as exc:  # the cluster goes on; Prometheus keeps the old targets
            logger.warning("could not write %s: %s", self.path, exc)
            return False
        self._written = text
        return True
