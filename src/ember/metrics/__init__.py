"""Metrics: what ember exports to Prometheus, and the files that point Prometheus and Grafana at it."""

from __future__ import annotations
