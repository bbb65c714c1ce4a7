"""The errors of the state API (Ray's names, ``ray.util.state.exception``)."""

from __future__ import annotations


class RayStateApiException(Exception):
    """A state query failed: bad input the cluster refused, a timeout, missing data."""


class ServerUnavailable(RayStateApiException):
    """The cluster could not be reached (no cluster, no token, connection refused)."""


class DataSourceUnavailable(Exception):
    """A source of state data did not answer (kept for Ray's import path)."""
