"""What metrics cost in CPU, measured by the daemons' own CPU counters (not by throughput).

Usage::

    python bench/metrics_cpu.py [--tasks 20000] [--scrapes 200] [--json OUT]

A throughput A/B (``bench/metrics_cost.py``) needs a quiet machine to see a
few percent; this measures the two costs directly, so noise from other
processes does not enter:

* **per scrape**: an embedded cluster with both exporters on runs
  ``--tasks`` tasks (so the control service's task table is full, as on a
  busy cluster), then each endpoint is scraped ``--scrapes`` times with the
  token; the CPU seconds the node daemon and the control service spent
  (``psutil`` user+system), minus what they spend idle for as long, divided
  by the scrapes;
* **per handled request**: the extra time ``rpc/dispatch`` spends timing one
  handler call (``HANDLER_TIMES``), from a loop of the timing code itself.

Then the cost at a Prometheus scrape interval ``I`` for a workload of ``R``
handled requests per second is ``(node + control per scrape) / I + R x
per-request``; the report gives it for the control-path rates of
``bench/workloads.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
import urllib.request
from typing import Any

import psutil


def cpu_s(p: psutil.Process) -> float:
    t = p.cpu_times()
    return float(t.user + t.system)


def scrape(url: str, token: str) -> int:
    req = urllib.request.Request(url)
    req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as r:
        return len(r.read())


def per_request_timing_s(n: int = 200_000) -> float:
    """What timing one handler call adds: two clock reads and a bucket count."""
    from ember.rpc import dispatch

    clock = dispatch.perf_counter
    record = dispatch.record_handler_time
    t0 = clock()
    for _ in range(n):
        start = clock()
        record("bench.method", clock() - start)
    total = clock() - t0
    t0 = clock()
    for _ in range(n):
        pass
    empty = clock() - t0
    dispatch.HANDLER_TIMES.pop("bench.method", None)
    return (total - empty) / n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--scrapes", type=int, default=200)
    ap.add_argument("--json", default="")
    args = ap.parse_args(argv)
    os.environ["EMBER_METRICS_EXPORT_PORT"] = "0"
    os.environ["EMBER_CONTROL_METRICS_EXPORT_PORT"] = "0"

    import ember
    from ember.cli import cluster_client
    from ember.common import session

    ember.init(num_cpus=2)

    @ember.remote
    def nop() -> None:
        return None

    ember.get([nop.remote() for _ in range(args.tasks)])
    rec = session.read_cluster_record()
    assert rec is not None, "the embedded cluster wrote no record"
    st = cluster_client.get_status(rec["control_address"], rec["token"], find_tls=False)
    node_url = next(
        f"http://{n.ip}:{n.metrics_port}/metrics" for n in st.nodes if n.metrics_port
    )
    control_url = f"http://{st.metrics_address}/metrics"
    procs = {p["name"]: psutil.Process(p["pid"]) for p in rec.get("processes", [])}
    node, control = procs["node daemon"], procs["control service"]
    time.sleep(3)  # let the tasks' events reach the control service

    out: dict[str, Any] = {"tasks": args.tasks, "scrapes": args.scrapes}
    for label, url, proc in (
        ("node", node_url, node),
        ("control", control_url, control),
    ):
        t0, c0 = time.monotonic(), cpu_s(proc)
        size = 0
        for _ in range(args.scrapes):
            size = scrape(url, rec["token"])
        busy_wall, busy_cpu = time.monotonic() - t0, cpu_s(proc) - c0
        c1 = cpu_s(proc)
        time.sleep(busy_wall)
        idle_cpu = cpu_s(proc) - c1
        out[label] = {
            "cpu_ms_per_scrape": round(1000 * (busy_cpu - idle_cpu) / args.scrapes, 3),
            "bytes_per_scrape": size,
        }
    ember.shutdown()
    per_req = per_request_timing_s()
    out["timing_us_per_request"] = round(per_req * 1e6, 3)
    scrape_ms = out["node"]["cpu_ms_per_scrape"] + out["control"]["cpu_ms_per_scrape"]
    out["cost_percent_of_one_core"] = {
        f"{interval}s_scrapes_{rate}_requests_per_s": round(
            100 * (scrape_ms / 1000 / interval + rate * per_req), 2
        )
        for interval in (1, 10, 15)
        for rate in (10_000, 30_000)
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
