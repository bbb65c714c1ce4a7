"""The cluster's task attempts as a Chrome trace, for ``ember timeline`` (``common/chrome_trace.py`` builds it)."""

from __future__ import annotations

from typing import Any

from ember.common.chrome_trace import chrome_trace
from ember.protocol.messages import ListStateRequest
from ember.util.state.client import DEFAULT_RPC_TIMEOUT, StateClient


def fetch_trace(
    address: str | None = None, timeout: float = DEFAULT_RPC_TIMEOUT
) -> list[dict[str, Any]]:
    """The trace of every task attempt the cluster keeps."""
    req = ListStateRequest(resource="tasks", limit=2**31 - 1, detail=True)
    reply = StateClient(address).list_rows(req, timeout)
    return chrome_trace(reply.rows)
