"""The cost of metrics on the control path: the same figures with metrics on and off, one run.

Usage::

    python bench/metrics_cost.py [--rounds 3] [--only A,B] [--scrape-interval 1.0]
                                 [--json bench/results/metrics_cost.json]

Each round runs ``workloads.py --backend ember`` twice, alternating (off, on,
off, on, ... so that the machine's drift hits both):

* **off**: ``EMBER_METRICS=0`` (no handler timing, no exporter, user metrics
  dropped);
* **on**: metrics as a user would run them on a watched cluster: handler
  timing in every process, the embedded cluster's node and control service
  exporting (``EMBER_METRICS_EXPORT_PORT=0``, ``EMBER_CONTROL_METRICS_EXPORT_PORT=0``)
  and this script scraping both endpoints every ``--scrape-interval`` seconds
  with the cluster token, as Prometheus would (its default is 15 s; 1 s is
  the pessimistic case).

The table gives each figure's median over rounds and the change of *on*
against *off*, signed so that a negative change is a cost of metrics (issue
12 asks for the control-path figures to stay within 5%).  The JSON keeps
every round and the scrapes made during the *on* rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

from ab import change  # bench/ is sys.path[0] when run as a script
from run import aggregate, fmt

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"

#: sync/async tasks and actor calls (the figures issue 12 bounds)
FIGURES = (
    "single_client_tasks_sync",
    "single_client_tasks_async",
    "multi_client_tasks_async",
    "actor_calls_sync_1_1",
    "actor_calls_async_1_1",
    "actor_calls_concurrent_threaded",
    "async_actor_calls",
    "actor_calls_n_n",
    "put_get_small",
)


#: how often the scraper asks the cluster for its endpoints, seconds
TARGETS_S = 15.0


class Scraper(threading.Thread):
    """Scrapes every endpoint of the cluster this machine's record names, until stopped."""

    def __init__(self, interval_s: float) -> None:
        super().__init__(daemon=True, name="scraper")
        self.interval_s = interval_s
        self.stopped = threading.Event()
        self.scrapes = 0
        self.bytes = 0
        self.errors: list[str] = []
        self._targets: tuple[list[str], str] = ([], "")
        self._targets_at = 0.0

    def run(self) -> None:
        while not self.stopped.wait(self.interval_s):
            try:
                self.scrape_once()
            except Exception as exc:  # the cluster is starting or gone: next tick
                self._targets = ([], "")
                if len(self.errors) < 20:
                    self.errors.append(repr(exc))

    def targets(self) -> tuple[list[str], str]:
        """The endpoints and the token, asked of the cluster every ``TARGETS_S``.

        (Prometheus reads its targets from the discovery file instead: asking
        the control service at every scrape would charge the scraper's own
        RPCs to metrics.)
        """
        from ember.cli import cluster_client
        from ember.common import session

        now = time.monotonic()
        if self._targets[0] and now - self._targets_at < TARGETS_S:
            return self._targets
        rec = session.read_cluster_record()
        if rec is None:
            return [], ""
        st = cluster_client.get_status(
            rec["control_address"], rec["token"], find_tls=False
        )
        urls = [
            f"http://{n.ip}:{n.metrics_port}/metrics"
            for n in st.nodes
            if n.alive and n.metrics_port
        ]
        if st.metrics_address:
            urls.append(f"http://{st.metrics_address}/metrics")
        self._targets, self._targets_at = (urls, rec["token"]), now
        return self._targets

    def scrape_once(self) -> None:
        urls, token = self.targets()
        for url in urls:
            req = urllib.request.Request(url)
            req.add_header("Authorization", f"Bearer {token}")
            with urllib.request.urlopen(req, timeout=10) as r:
                self.bytes += len(r.read())
            self.scrapes += 1


def run_once(label: str, args: argparse.Namespace) -> dict[str, Any]:
    fd, out = tempfile.mkstemp(prefix=f"metrics-{label}-", suffix=".json")
    os.close(fd)
    os.unlink(out)
    env = dict(os.environ)
    env["PYTHONPATH"] = str(HERE.parent / "src")
    scraper = None
    if label == "off":
        env["EMBER_METRICS"] = "0"
    else:
        env["EMBER_METRICS"] = "1"
        env["EMBER_METRICS_EXPORT_PORT"] = "0"
        env["EMBER_CONTROL_METRICS_EXPORT_PORT"] = "0"
        scraper = Scraper(args.scrape_interval)
        scraper.start()
    cmd = [sys.executable, str(WORKLOADS), "--backend", "ember", "--json", out]
    cmd += ["--only", ",".join(args.only)]
    print(f"--- metrics {label}", file=sys.stderr, flush=True)
    try:
        # not killed on a timeout: workloads.py has its own watchdog
        subprocess.run(cmd, env=env, cwd=str(HERE.parent), check=False)
    finally:
        if scraper is not None:
            scraper.stopped.set()
            scraper.join(timeout=15)
    try:
        with open(out) as f:
            data: dict[str, Any] = json.load(f)
        os.unlink(out)
    except (OSError, ValueError) as exc:
        data = {"results": {}, "error": repr(exc)}
    data["backend"] = label
    if scraper is not None:
        data["scrapes"] = {
            "count": scraper.scrapes,
            "bytes": scraper.bytes,
            "errors": scraper.errors,
        }
    return data


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", default=",".join(FIGURES))
    ap.add_argument("--scrape-interval", type=float, default=1.0)
    ap.add_argument("--json", default=str(HERE / "results" / "metrics_cost.json"))
    args = ap.parse_args(argv)
    args.only = [n for n in args.only.split(",") if n]
    rounds = []
    for _ in range(args.rounds):
        rounds.append(run_once("off", args))
        rounds.append(run_once("on", args))
    off, on = aggregate(rounds, "off"), aggregate(rounds, "on")
    lines = ["| figure | unit | metrics off | metrics on | change (- = cost) |"]
    lines.append("|---|---|---:|---:|---:|")
    for name in args.only:
        a, b = off.get(name, {}), on.get(name, {})
        c = change(a, b)
        unit = a.get("unit") or b.get("unit") or ""
        pct = "-" if c is None else f"{100 * c:+.1f}%"
        lines.append(
            f"| {name} | {unit} | {fmt(a.get('value'))} | {fmt(b.get('value'))} | {pct} |"
        )
    scrapes = sum(r.get("scrapes", {}).get("count", 0) for r in rounds)
    lines.append(f"\n{scrapes} scrapes during the 'on' rounds")
    print("\n".join(lines))
    Path(args.json).write_text(
        json.dumps({"rounds": rounds, "medians": {"off": off, "on": on}}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
