"""The session's Prometheus and Grafana files: scrape config, target discovery, dashboards.

``<session>/metrics/prometheus/prometheus.yml`` and
``<session>/metrics/grafana/grafana.ini`` (with its provisioning and the
dashboard JSON) are written once when the control service starts
(:func:`~ember.metrics.files.session_files.write_session_files`); the target
discovery file ``<session>/prom_metrics_service_discovery.json`` is rewritten
by the control service whenever a node joins or leaves
(:class:`~ember.metrics.files.prometheus.DiscoveryFile`).  The modules here
are plain file writers: no I/O beyond the session folder, no network.
"""

from __future__ import annotations
