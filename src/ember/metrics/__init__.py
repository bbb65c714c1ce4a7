"""Prometheus metrics: collectors computed at scrape time, and the token-guarded exporter.

The hot paths keep plain counters (``rpc/dispatch.HANDLER_TIMES``, the
spiller's and memory monitor's counts, the tables of the control service);
the collectors here read them only when Prometheus scrapes.  Names follow
Ray's with the ``ember_`` prefix (:mod:`ember.metrics.names`).
``ember.metrics.files`` writes the session's Prometheus and Grafana files.
"""

from __future__ import annotations
