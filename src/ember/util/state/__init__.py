"""``ember.util.state``: the state API of a running cluster (Ray's ``ray.util.state``)."""

from __future__ import annotations

from ember.util.state.logs import get_log as get_log, list_logs as list_logs

__all__ = ["get_log", "list_logs"]
