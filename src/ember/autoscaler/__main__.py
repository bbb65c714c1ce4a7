"""``python -m ember.autoscaler``: run the autoscaler beside a head's control service."""

from __future__ import annotations

import argparse

from ember.autoscaler.service import run


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.autoscaler")
    p.add_argument(
        "--address", required=True, help="the control service: tcp:HOST:PORT"
    )
    p.add_argument("--config", required=True, help="the cluster config (JSON)")
    p.add_argument(
        "--state-dir", required=True, help="private folder for the provider's records"
    )
    p.add_argument("--ready-fd", type=int, default=-1)
    args = p.parse_args()
    run(args.address, args.config, args.state_dir, args.ready_fd)


if __name__ == "__main__":
    main()
