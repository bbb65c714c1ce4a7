"""The name of every metric ember exports (Ray's names with the ``ember_`` prefix).

Counters are listed by the name Prometheus shows (with ``_total``);
histograms by their base name (``_bucket``, ``_sum``, ``_count`` follow).
Dashboards, the generated Grafana files and the tests read these lists, so a
rename shows up everywhere at once.
"""

from __future__ import annotations

import os

PREFIX = "ember_"

#: labels on every sample, as Ray's
COMMON_LABELS = ("SessionName", "NodeAddress")

# -- node (psutil, at scrape time) ----------------------------------------------------
NODE_CPU_UTILIZATION = "ember_node_cpu_utilization"
NODE_CPU_COUNT = "ember_node_cpu_count"
NODE_MEM_USED = "ember_node_mem_used"
NODE_MEM_AVAILABLE = "ember_node_mem_available"
NODE_MEM_TOTAL = "ember_node_mem_total"
NODE_DISK_USAGE = "ember_node_disk_usage"
NODE_DISK_FREE = "ember_node_disk_free"
NODE_DISK_UTILIZATION = "ember_node_disk_utilization_percentage"
NODE_NETWORK_SENT = "ember_node_network_sent"
NODE_NETWORK_RECEIVED = "ember_node_network_received"
NODE_NETWORK_SEND_SPEED = "ember_node_network_send_speed"
NODE_NETWORK_RECEIVE_SPEED = "ember_node_network_receive_speed"
NODE_DISK_IO_READ = "ember_node_disk_io_read"
NODE_DISK_IO_WRITE = "ember_node_disk_io_write"
NODE_DISK_IO_READ_SPEED = "ember_node_disk_io_read_speed"
NODE_DISK_IO_WRITE_SPEED = "ember_node_disk_io_write_speed"
#: only where the node has GPUs (and NVML answers)
NODE_GPUS_AVAILABLE = "ember_node_gpus_available"
NODE_GPUS_UTILIZATION = "ember_node_gpus_utilization"
NODE_GRAM_USED = "ember_node_gram_used"
NODE_GRAM_AVAILABLE = "ember_node_gram_available"

# -- object store -------------------------------------------------------------------
OBJECT_STORE_MEMORY = "ember_object_store_memory"  # {Location, ObjectState}
OBJECT_STORE_AVAILABLE = "ember_object_store_available_memory"
OBJECT_STORE_USED = "ember_object_store_used_memory"
OBJECT_STORE_NUM_LOCAL_OBJECTS = "ember_object_store_num_local_objects"
SPILL_REQUESTS = "ember_spill_manager_request_total"  # {Type=Spilled|Restored}
SPILL_BYTES = "ember_spill_manager_bytes_total"  # {Type=Spilled|Restored}

# -- scheduling ---------------------------------------------------------------------
RESOURCES = "ember_resources"  # {Name, State=USED|AVAILABLE}
UNSCHEDULEABLE_TASKS = "ember_scheduler_unscheduleable_tasks"  # {Reason}

# -- processes ----------------------------------------------------------------------
COMPONENT_RSS_MB = "ember_component_rss_mb"  # {Component}
COMPONENT_RSS_BYTES = "ember_component_rss_bytes"
COMPONENT_CPU_PERCENTAGE = "ember_component_cpu_percentage"
COMPONENT_COUNT = "ember_component_processes"  # ember's: processes per Component

# -- failures -----------------------------------------------------------------------
UNEXPECTED_WORKER_FAILURES = "ember_node_manager_unexpected_worker_failure_total"
MEMORY_EVICTIONS = "ember_memory_manager_worker_eviction_total"  # {Type, Name}

# -- work (the control service) -------------------------------------------------------
TASKS = "ember_tasks"  # {State, Name, IsRetry}
ACTORS = "ember_actors"  # {State, Name}
PLACEMENT_GROUPS = "ember_placement_groups"  # {State}

# -- RPC ----------------------------------------------------------------------------
#: a histogram per method, in milliseconds (Ray's name, though ember's RPC is not gRPC)
RPC_LATENCY = "ember_grpc_server_req_process_time_ms"  # {Method}

#: what a node daemon's endpoint serves (GPU figures only with GPUs)
NODE_METRICS = (
    NODE_CPU_UTILIZATION,
    NODE_CPU_COUNT,
    NODE_MEM_USED,
    NODE_MEM_AVAILABLE,
    NODE_MEM_TOTAL,
    NODE_DISK_USAGE,
    NODE_DISK_FREE,
    NODE_DISK_UTILIZATION,
    NODE_NETWORK_SENT,
    NODE_NETWORK_RECEIVED,
    NODE_NETWORK_SEND_SPEED,
    NODE_NETWORK_RECEIVE_SPEED,
    NODE_DISK_IO_READ,
    NODE_DISK_IO_WRITE,
    NODE_DISK_IO_READ_SPEED,
    NODE_DISK_IO_WRITE_SPEED,
    OBJECT_STORE_MEMORY,
    OBJECT_STORE_AVAILABLE,
    OBJECT_STORE_USED,
    OBJECT_STORE_NUM_LOCAL_OBJECTS,
    SPILL_REQUESTS,
    SPILL_BYTES,
    RESOURCES,
    UNSCHEDULEABLE_TASKS,
    COMPONENT_RSS_MB,
    COMPONENT_RSS_BYTES,
    COMPONENT_CPU_PERCENTAGE,
    COMPONENT_COUNT,
    UNEXPECTED_WORKER_FAILURES,
    MEMORY_EVICTIONS,
    RPC_LATENCY,
)
GPU_METRICS = (
    NODE_GPUS_AVAILABLE,
    NODE_GPUS_UTILIZATION,
    NODE_GRAM_USED,
    NODE_GRAM_AVAILABLE,
)
#: what the control service's endpoint serves
CONTROL_METRICS = (
    ACTORS,
    PLACEMENT_GROUPS,
    TASKS,
    COMPONENT_RSS_MB,
    COMPONENT_RSS_BYTES,
    COMPONENT_CPU_PERCENTAGE,
    COMPONENT_COUNT,
    RPC_LATENCY,
)


def enabled(env: dict[str, str] | None = None) -> bool:
    """Whether metrics are collected and exported at all (``EMBER_METRICS=0``: no)."""
    return (os.environ if env is None else env).get("EMBER_METRICS", "1") != "0"


def user_metric_name(name: str) -> str:
    """The name a user's metric is exported under (Ray adds ``ray_``; ember ``ember_``)."""
    return PREFIX + name
