"""What the dashboard's route modules share: the cluster they serve and how to ask it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ember.dashboard.links import ClusterLinks
from ember.util.state.client import StateClient


@dataclass
class DashboardContext:
    """The cluster one dashboard process serves.

    ``control_address`` is the control service's ``HOST:PORT``; ``token`` the
    cluster token every request must carry; ``session_dir`` the head's
    session folder (no endpoint reads a file outside it).
    """

    control_address: str
    token: str
    session_dir: str
    grafana_host: str = ""
    #: per-module state kept for the life of the process (a module's own key)
    extras: dict[str, Any] = field(default_factory=dict)
    _state: StateClient | None = None
    _links: ClusterLinks | None = None

    @property
    def state(self) -> StateClient:
        """A state API client for this cluster (``ember.util.state``'s)."""
        if self._state is None:
            self._state = StateClient(self.control_address)
        return self._state

    @property
    def links(self) -> ClusterLinks:
        """Async connections to the control service and the nodes, kept open
        (on the dashboard's loop; use these in handlers, not the blocking ``state``)."""
        if self._links is None:
            self._links = ClusterLinks(self.control_address, self.token)
        return self._links
