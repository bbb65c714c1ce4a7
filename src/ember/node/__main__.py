"""``python -m ember.node``: run a node daemon."""

from __future__ import annotations

import argparse
import json

from ember.node.daemon import NodeOptions, run


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.node")
    p.add_argument("--session-dir", required=True)
    p.add_argument("--control", required=True, help="control service address")
    p.add_argument("--node-ip", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument(
        "--listen-address",
        default="",
        help="the TCP address to listen on (default: --node-ip)",
    )
    p.add_argument(
        "--no-tcp",
        action="store_true",
        help="listen on the unix socket only (a cluster no other node can join)",
    )
    p.add_argument("--resources", default="{}", help="JSON resource totals")
    p.add_argument("--labels", default="{}", help="JSON node labels (str to str)")
    p.add_argument("--object-store-bytes", type=int, required=True)
    p.add_argument("--head", action="store_true")
    p.add_argument(
        "--object-spilling-directory",
        default="",
        help="spill objects under this folder (default: the session's spill/)",
    )
    p.add_argument("--ready-fd", type=int, default=-1)
    p.add_argument(
        "--metrics-export-port",
        type=int,
        default=-1,
        help="serve Prometheus metrics on this port of --node-ip (0: a free port; "
        "default -1: EMBER_METRICS_EXPORT_PORT, else none)",
    )
    a = p.parse_args()
    run(
        NodeOptions(
            session_dir=a.session_dir,
            control=a.control,
            node_ip=a.node_ip,
            port=a.port,
            listen_address=a.listen_address,
            tcp=not a.no_tcp,
            resources=json.loads(a.resources),
            labels=json.loads(a.labels),
            object_store_bytes=a.object_store_bytes,
            is_head=a.head,
            ready_fd=a.ready_fd,
            spill_dir=a.object_spilling_directory,
            metrics_port=a.metrics_export_port,
        )
    )


if __name__ == "__main__":
    main()
