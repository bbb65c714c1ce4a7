"""``python -m ember.control``: run the control service."""

from __future__ import annotations

import argparse
import os
import sys

from ember.control.service import run


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.control")
    p.add_argument("--session-dir", required=True)
    p.add_argument("--unix", required=True, help="unix socket path to listen on")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="the TCP address to listen on; '' listens on the unix socket only",
    )
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--ready-fd", type=int, default=-1)
    p.add_argument(
        "--metrics-export-port",
        type=int,
        default=-1,
        help="serve Prometheus metrics on this port of --host (0: a free port; "
        "default -1: EMBER_CONTROL_METRICS_EXPORT_PORT, else none)",
    )
    p.add_argument(
        "--storage",
        default="memory",
        help="where the state lives: memory (default), sqlite (a file in the session "
        "folder) or sqlite:PATH",
    )
    p.add_argument(
        "--supervise",
        action="store_true",
        help="run the control service as a child and restart it when it dies "
        "(ember start --head)",
    )
    args = p.parse_args()
    if args.supervise:
        from ember.control.supervisor import supervise

        argv = [a for a in sys.argv[1:] if a != "--supervise"]
        if "--ready-fd" in argv:
            i = argv.index("--ready-fd")
            del argv[i : i + 2]
        log_path = os.path.join(args.session_dir, "logs", "control.log")
        raise SystemExit(supervise(argv, args.ready_fd, log_path))
    run(
        args.session_dir,
        args.unix,
        args.host,
        args.port,
        args.ready_fd,
        args.storage,
        args.metrics_export_port,
    )


if __name__ == "__main__":
    main()
