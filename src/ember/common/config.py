"""Tunables, read once at process start and passed down."""

from __future__ import annotations

import dataclasses
import os
from typing import Any

#: Values whose serialized size is below this travel inline in messages.
INLINE_THRESHOLD_BYTES = 100 * 1024

#: the settings a node daemon reads for spilling (a driver hands them to the
#: embedded cluster's daemon through its environment)
SPILL_SETTINGS = (
    "object_spilling_threshold",
    "object_spilling_directory",
    "object_spilling_config",
    "min_spilling_size",
    "max_fused_object_count",
    "max_io_workers",
    "object_store_full_timeout_s",
)

#: the metrics settings a driver hands to the embedded cluster's daemons
METRICS_SETTINGS = ("metrics_export_port", "control_metrics_export_port")


@dataclasses.dataclass(frozen=True)
class Config:
    """Engine tunables with ``EMBER_<NAME>`` environment overrides."""

    #: objects below this size live inline in the owner's memory store
    inline_threshold_bytes: int = INLINE_THRESHOLD_BYTES
    #: how long an idle lease is kept by a submitter before it is returned
    lease_linger_s: float = 0.05
    #: tasks in flight on one leased worker
    max_tasks_in_flight_per_worker: int = 1
    #: lease requests a submitter keeps outstanding per scheduling key
    max_pending_lease_requests: int = 8
    #: idle workers above the CPU count are stopped after this long
    idle_worker_timeout_s: float = 10.0
    #: how often a node daemon heartbeats to the control service
    heartbeat_interval_s: float = 0.5
    #: a node missing heartbeats this long is declared dead
    node_death_timeout_s: float = 10.0
    #: how long connecting to a daemon may take before giving up
    connect_timeout_s: float = 10.0
    #: how long node daemons, drivers and workers keep trying to reach a control
    #: service that went away (it is restarted by ``ember start --head``) before
    #: giving up with an error
    head_reconnect_timeout_s: float = 60.0
    #: lineage (specs and argument bytes of finished tasks) an owner keeps to
    #: rebuild lost objects; past it the oldest is evicted (EMBER_MAX_LINEAGE_BYTES)
    max_lineage_bytes: int = 1024**3
    #: how often an infeasible request is reported again
    infeasible_warning_interval_s: float = 30.0
    # -- object spilling (Ray's names where Ray has them) ------------------------------
    #: the fraction of the object store above which a node spills in the background
    object_spilling_threshold: float = 0.8
    #: where nodes spill ("": ``<session>/spill``); a folder given here gets a
    #: private subfolder per session
    object_spilling_directory: str = ""
    #: Ray's JSON spelling of the same (``{"type": "filesystem", "params":
    #: {"directory_path": DIR}}``); ``object_spilling_directory`` wins
    object_spilling_config: str = ""
    #: a spill file is closed once it holds this many bytes ...
    min_spilling_size: int = 16 * 1024 * 1024
    #: ... or this many objects
    max_fused_object_count: int = 64
    #: spill/restore threads of a node (several writes and reads in flight)
    max_io_workers: int = 4
    #: how long a create waits for spilling to make room before ObjectStoreFullError
    object_store_full_timeout_s: float = 30.0
    # -- RPC deadlines, by the method's deadline class (protocol.messages) ----------
    #: a short request/reply RPC ("control" class)
    rpc_control_deadline_s: float = 60.0
    #: added to a long poll's own ``timeout_s`` ("long_poll" class; one that waits
    #: without a bound has no deadline and ends with its connection)
    rpc_long_poll_grace_s: float = 30.0
    #: one object-transfer chunk ("transfer" class)
    rpc_transfer_deadline_s: float = 120.0
    #: a pushed task / actor call / lease whose reply waits on user code or
    #: resources ("push" class); 0: none, the call ends only with its connection
    rpc_push_deadline_s: float = 0.0
    #: connecting plus the handshake, for a peer that has not authenticated
    rpc_handshake_deadline_s: float = 5.0
    # -- RPC bounds -----------------------------------------------------------------
    #: buffered outgoing bytes above which async writers wait (``drain``)
    rpc_write_high_water_bytes: int = 16 * 1024 * 1024
    #: the largest frame accepted from an authenticated peer
    rpc_max_frame_bytes: int = 256 * 1024 * 1024
    #: connections still in their handshake, per server (the oldest is dropped)
    rpc_max_unauthenticated: int = 512
    #: connections still in their handshake, per TCP source address
    rpc_max_unauthenticated_per_source: int = 128
    #: refused peers are logged as one summary line per this interval
    rpc_refusal_log_interval_s: float = 10.0
    # -- metrics (ember.metrics) ---------------------------------------------------------
    #: a node daemon's Prometheus port when its command line names none: -1 (the
    #: default, the embedded cluster's) serves none, 0 a free port
    metrics_export_port: int = -1
    #: the control service's, likewise; -1: a free port when ``metrics_export_port``
    #: asks for node endpoints, else none
    control_metrics_export_port: int = -1

    def as_env(self, names: tuple[str, ...]) -> dict[str, str]:
        """``EMBER_<NAME>`` variables that give another process these settings."""
        return {"EMBER_" + n.upper(): str(getattr(self, n)) for n in names}

    @classmethod
    def from_env(cls, overrides: dict[str, Any] | None = None) -> Config:
        """Defaults, then ``EMBER_*`` variables, then ``overrides``."""
        values: dict[str, Any] = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get("EMBER_" + field.name.upper())
            if raw is not None:
                values[field.name] = type(field.default)(raw)  # type: ignore[misc]
        values.update(overrides or {})
        return cls(**values)
