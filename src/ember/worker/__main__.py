"""``python -m ember.worker``: a worker process started by a node daemon."""

from __future__ import annotations

import argparse

from ember.worker.main import run


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m ember.worker")
    p.add_argument("--node-unix", required=True)
    p.add_argument("--node-id", required=True)
    p.add_argument("--store-path", required=True)
    p.add_argument("--store-bytes", type=int, required=True)
    p.add_argument("--node-ip", default="127.0.0.1")
    p.add_argument("--env-key", default="")
    p.add_argument("--control", required=True)
    a = p.parse_args()
    run(
        a.node_unix,
        bytes.fromhex(a.node_id),
        a.store_path,
        a.store_bytes,
        a.node_ip,
        a.control,
    )


if __name__ == "__main__":
    main()
