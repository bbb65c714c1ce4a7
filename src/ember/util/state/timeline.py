"""Task attempts as a Chrome trace (``ember timeline``): one bar per attempt that ran.

The trace is the JSON array format of Chrome's trace viewer (chrome://tracing,
Perfetto): one complete event (``"ph": "X"``, start ``ts`` and ``dur`` in
microseconds) per task attempt with a start and an end, in the process row
(``pid``) of its node and the thread row (``tid``) of its worker, as
``ray timeline`` draws them; metadata events (``"ph": "M"``) name the rows.
A failed attempt is drawn in red and its error type is in ``args``.
"""

from __future__ import annotations

import json
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


def timeline(
    filename: str | None = None, address: str | None = None
) -> list[dict[str, Any]] | None:
    """The trace events, or, with ``filename``, write them there as JSON (returns None)."""
    trace = fetch_trace(address)
    if filename is None:
        return trace
    with open(filename, "w", encoding="utf-8") as f:
        json.dump(trace, f)
    return None
