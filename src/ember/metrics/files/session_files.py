"""Where a session's Prometheus and Grafana files live, their knobs, and writing them.

``ember start --head`` calls :func:`write_session_files` once the cluster
token file exists; the layout (as Ray's, under the session folder)::

    <session>/prom_metrics_service_discovery.json   targets (the control service's)
    <session>/metrics/prometheus/prometheus.yml
    <session>/metrics/grafana/grafana.ini
    <session>/metrics/grafana/provisioning/datasources/default.yml
    <session>/metrics/grafana/provisioning/dashboards/default.yml
    <session>/metrics/grafana/dashboards/*.json

Folders are created 0700 and files written 0600 like every other session
file (:mod:`ember.common.private_files`): Prometheus and Grafana run as the
user who started the cluster.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from ember.common.private_files import ensure_private_dirs, write_private
from ember.metrics.files import dashboards, grafana, prometheus

METRICS_DIR = "metrics"
SCRAPE_INTERVAL_ENV = "EMBER_METRICS_SCRAPE_INTERVAL_S"
PROMETHEUS_HOST_ENVS = ("EMBER_PROMETHEUS_HOST", "RAY_PROMETHEUS_HOST")
GRAFANA_ADDR_ENV = "EMBER_GRAFANA_HTTP_ADDR"
GRAFANA_PORT_ENV = "EMBER_GRAFANA_HTTP_PORT"


@dataclass(frozen=True)
class MetricsPaths:
    """The metrics files of the session folder ``session_dir``."""

    session_dir: str

    def _m(self, *parts: str) -> str:
        return os.path.join(self.session_dir, METRICS_DIR, *parts)

    @property
    def discovery(self) -> str:
        return os.path.join(self.session_dir, prometheus.DISCOVERY_FILE)

    @property
    def prometheus_yml(self) -> str:
        return self._m("prometheus", "prometheus.yml")

    @property
    def grafana_dir(self) -> str:
        return self._m("grafana")

    @property
    def grafana_ini(self) -> str:
        return self._m("grafana", "grafana.ini")

    @property
    def datasources_yml(self) -> str:
        return self._m("grafana", "provisioning", "datasources", "default.yml")

    @property
    def dashboards_yml(self) -> str:
        return self._m("grafana", "provisioning", "dashboards", "default.yml")

    @property
    def dashboards_dir(self) -> str:
        return self._m("grafana", "dashboards")

    def dashboard(self, file: str) -> str:
        return os.path.join(self.dashboards_dir, file)


@dataclass(frozen=True)
class FileOptions:
    """The knobs of the generated files (``EMBER_*`` variables, :meth:`from_env`)."""

    #: Prometheus's scrape and evaluation interval (Ray's default: 10 s)
    scrape_interval_s: float = prometheus.DEFAULT_SCRAPE_INTERVAL_S
    #: where Grafana finds Prometheus
    prometheus_url: str = grafana.DEFAULT_PROMETHEUS_URL
    grafana_http_addr: str = grafana.DEFAULT_HTTP_ADDR
    grafana_http_port: int = grafana.DEFAULT_HTTP_PORT

    def __post_init__(self) -> None:
        if not self.scrape_interval_s > 0:
            raise ValueError(
                f"the scrape interval must be a positive number of seconds, got "
                f"{self.scrape_interval_s!r} ({SCRAPE_INTERVAL_ENV})"
            )
        grafana.check_url(self.prometheus_url)
        if not 0 < self.grafana_http_port < 65536:
            raise ValueError(
                f"Grafana's port must be in 1-65535, got {self.grafana_http_port} "
                f"({GRAFANA_PORT_ENV})"
            )
        if not self.grafana_http_addr or any(
            c.isspace() for c in self.grafana_http_addr
        ):
            raise ValueError(
                f"Grafana's listen address must be a host name or IP address, got "
                f"{self.grafana_http_addr!r} ({GRAFANA_ADDR_ENV})"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> FileOptions:
        """Defaults, replaced by the variables set in ``env`` (``os.environ``)."""
        env = os.environ if env is None else env
        url = next(
            (env[k] for k in PROMETHEUS_HOST_ENVS if env.get(k)),
            grafana.DEFAULT_PROMETHEUS_URL,
        )
        return cls(
            scrape_interval_s=_number(env, SCRAPE_INTERVAL_ENV, cls.scrape_interval_s),
            prometheus_url=url,
            grafana_http_addr=env.get(GRAFANA_ADDR_ENV) or grafana.DEFAULT_HTTP_ADDR,
            grafana_http_port=int(
                _number(env, GRAFANA_PORT_ENV, grafana.DEFAULT_HTTP_PORT)
            ),
        )


def _number(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def write_session_files(
    session_dir: str, token_file: str, options: FileOptions | None = None
) -> MetricsPaths:
    """Write prometheus.yml and the Grafana files of ``session_dir``; their paths.

    ``token_file``: the cluster token file, which Prometheus reads to
    authenticate every scrape.
    """
    options = options or FileOptions()
    paths = MetricsPaths(session_dir)
    name = os.path.basename(os.path.abspath(session_dir).rstrip("/"))
    ensure_private_dirs(session_dir, METRICS_DIR, "prometheus")
    write_private(
        paths.prometheus_yml,
        prometheus.prometheus_yml(
            paths.discovery,
            os.path.abspath(token_file),
            scrape_interval_s=options.scrape_interval_s,
            session_name=name,
        ),
    )
    for sub in ("datasources", "dashboards"):
        ensure_private_dirs(session_dir, METRICS_DIR, "grafana", "provisioning", sub)
    ensure_private_dirs(session_dir, METRICS_DIR, "grafana", "dashboards")
    built = dashboards.build_all(name)
    write_private(
        paths.grafana_ini,
        grafana.grafana_ini(
            paths.grafana_dir,
            home_dashboard=paths.dashboard(built[0].file),
            http_addr=options.grafana_http_addr,
            http_port=options.grafana_http_port,
        ),
    )
    write_private(paths.datasources_yml, grafana.datasource_yml(options.prometheus_url))
    write_private(paths.dashboards_yml, grafana.dashboards_yml(paths.dashboards_dir))
    for d in built:
        write_private(paths.dashboard(d.file), d.text())
    return paths
