"""``python -m ember.dashboard``: serve the dashboard of a cluster (see ``process.py``)."""

from __future__ import annotations

import argparse
import sys

from ember.common.dashboard_launch import DEFAULT_PORT


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m ember.dashboard")
    p.add_argument(
        "--control",
        required=True,
        help="the control service: unix:PATH or tcp:HOST:PORT",
    )
    p.add_argument("--session-dir", required=True, help="the head's session folder")
    p.add_argument("--host", default="127.0.0.1", help="the address to listen on")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="0: any free port")
    p.add_argument(
        "--listen-fd",
        type=int,
        default=-1,
        help="serve this inherited listening socket instead of --host/--port",
    )
    p.add_argument(
        "--url-host", default="", help="the host name in the URL (default: --host)"
    )
    p.add_argument(
        "--grafana-host", default="", help="Grafana's URL, for the metrics page"
    )
    p.add_argument("--ready-fd", type=int, default=-1)
    p.add_argument(
        "--supervise",
        action="store_true",
        help="run the dashboard as a child and restart it when it dies",
    )
    return p


def main() -> None:
    args = parser().parse_args()
    # The cluster token comes from EMBER_AUTH_TOKEN, never from the command line.
    from ember.dashboard import process

    if args.supervise:
        raise SystemExit(process.supervise(args, sys.argv[1:]))
    process.serve(args)


if __name__ == "__main__":
    main()
