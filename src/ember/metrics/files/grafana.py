"""grafana.ini and Grafana's provisioning files: the Prometheus data source and the dashboards.

Every path in them is absolute and inside the session folder, so
``grafana-server --config <session>/metrics/grafana/grafana.ini`` works from
any folder without editing: Grafana keeps its database, logs and plugins in
``grafana/data``, ``grafana/logs`` and ``grafana/plugins`` there, and loads
the data source and the dashboards from ``grafana/provisioning``.  (Grafana
still needs its own install folder for its web assets: run it from there, as
its tarball expects, or pass ``--homepath``.)
"""

from __future__ import annotations

import json
import os

#: the provisioned data source's uid; every dashboard panel names it
DATASOURCE_UID = "ember-prometheus"
DATASOURCE_NAME = "Prometheus"
DEFAULT_PROMETHEUS_URL = "http://localhost:9090"
#: Grafana listens on this host's loopback unless told otherwise (anonymous
#: viewers may read every dashboard: see docs/security.md)
DEFAULT_HTTP_ADDR = "127.0.0.1"
DEFAULT_HTTP_PORT = 3000
#: the provisioned dashboards' folder in Grafana
DASHBOARD_FOLDER = "ember"


def check_url(url: str) -> str:
    """``url`` if it is an http(s) URL (the data source's), else ValueError."""
    if not url.startswith(("http://", "https://")) or any(c in url for c in "\n\r"):
        raise ValueError(
            f"the Prometheus URL for Grafana must start with http:// or https://, got "
            f"{url!r} (EMBER_PROMETHEUS_HOST)"
        )
    return url


def grafana_ini(
    grafana_dir: str,
    *,
    home_dashboard: str,
    http_addr: str = DEFAULT_HTTP_ADDR,
    http_port: int = DEFAULT_HTTP_PORT,
) -> str:
    """The text of ``grafana.ini`` for the files under ``grafana_dir``."""

    def p(*parts: str) -> str:
        return os.path.join(grafana_dir, *parts)

    return f"""; Written by ember. Start Grafana with:
;   grafana-server --config {p("grafana.ini")} web
; (from Grafana's install folder, or with --homepath <it>).
[paths]
data = {p("data")}
logs = {p("logs")}
plugins = {p("plugins")}
provisioning = {p("provisioning")}

[server]
http_addr = {http_addr}
http_port = {http_port}

[security]
allow_embedding = true

[auth.anonymous]
enabled = true
org_name = Main Org.
org_role = Viewer

[analytics]
reporting_enabled = false
check_for_updates = false

[dashboards]
default_home_dashboard_path = {home_dashboard}
"""


def datasource_yml(prometheus_url: str) -> str:
    """Provisioning of the Prometheus data source (uid :data:`DATASOURCE_UID`)."""
    return f"""# Written by ember: the Prometheus server the dashboards query.
apiVersion: 1
datasources:
  - name: {json.dumps(DATASOURCE_NAME)}
    uid: {json.dumps(DATASOURCE_UID)}
    type: prometheus
    access: proxy
    url: {json.dumps(check_url(prometheus_url))}
    isDefault: true
    editable: true
"""


def dashboards_yml(dashboards_dir: str) -> str:
    """Provisioning of the dashboard JSON files in ``dashboards_dir``."""
    return f"""# Written by ember: the dashboards of this session.
apiVersion: 1
providers:
  - name: ember
    folder: {json.dumps(DASHBOARD_FOLDER)}
    type: file
    disableDeletion: false
    allowUiUpdates: true
    options:
      path: {json.dumps(dashboards_dir)}
"""
