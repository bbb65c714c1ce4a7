"""Page weight and time to first render of ember's dashboard against Ray 2.60's.

Usage::

    python bench/dashboard_page.py [--backends ember,ray] [--rounds 3]
        [--window 5] [--ray-python /tmp/ray-venv/bin/python]
        [--json bench/results/dashboard_page.json]

For each backend a 2-node cluster of the same shape is started through its
CLI (``bench/multinode.py``: a head and a node with ``{"far": 1}``, one CPU
each, on 127.0.0.1), its dashboard on 127.0.0.1:18410 (ember) or :28420
(Ray), and a short driver runs 20 tasks and an actor so the pages have rows.
Each round opens the dashboard in a fresh headless Chromium (a new profile:
cold cache, no cookie; ``tests/util/cdp.py``) the way a user does:

* ember: the URL ``ember start --head`` prints, ``/?token=...`` (the cookie
  is set and the token leaves the address bar);
* Ray: ``/`` with Ray's token cookie already set (Ray 2.60 turns token
  authentication on; its page would otherwise stop at a token prompt).

and records, from the DevTools Network events of the first ``--window``
seconds after the navigation starts (the pages keep polling after that):

* ``static_bytes`` / ``static_transfer_bytes``: the decoded and transferred
  bytes of every document, script, stylesheet, image and font (page weight);
* ``api_bytes``, ``requests``: the data calls (XHR/fetch) and the count;
* ``fcp_ms``: first contentful paint (``performance`` paint timing);
* ``load_ms``: the load event's end;
* ``first_data_ms`` (ember only): the first page update with data (the
  ``ember-first-data`` performance mark).

The table gives each figure's median over rounds.  The lead runs this for the
README's figures; helpers only smoke it (``--backends ember --rounds 1``).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import multinode  # bench/ is sys.path[0] when run as a script

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # tests/util/cdp.py, the DevTools client
cdp = importlib.import_module("tests.util.cdp")

#: (Ray 2.60 hands ports 10002-19999 to its workers: its dashboard must sit outside them)
PORTS = {"ember": 18410, "ray": 28420}
STATIC_TYPES = {
    "Document",
    "Script",
    "Stylesheet",
    "Image",
    "Font",
    "Manifest",
    "Other",
}
DRIVER = """
import sys
backend = sys.argv[1]
if backend == "ember":
    import ember as ray
else:
    import ray
ray.init(address="auto")

@ray.remote
def square(x):
    return x * x

@ray.remote
class Counter:
    def __init__(self):
        self.n = 0
    def add(self):
        self.n += 1
        return self.n

assert ray.get([square.remote(i) for i in range(20)]) == [i * i for i in range(20)]
c = Counter.remote()
assert ray.get(c.add.remote()) == 1
ray.shutdown()
"""
FIGURES = (
    "static_bytes",
    "static_transfer_bytes",
    "api_bytes",
    "requests",
    "fcp_ms",
    "load_ms",
    "first_data_ms",
)


class DashboardCluster(multinode.Cluster):
    """multinode's 2-node cluster with its dashboard on a fixed local port."""

    def start(self) -> None:
        common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1"]
        common += ["--object-store-memory", str(256 * 2**20)]
        port = str(PORTS[self.backend])
        dash = ["--dashboard-port", port]
        if self.backend == "ray":
            dash = ["--include-dashboard=true", *dash, "--dashboard-host", "127.0.0.1"]
        self._cli("start", "--head", "--port", str(self.port), *common, *dash)
        far = ["--resources", json.dumps({"far": 1})]
        self._cli("start", "--address", f"127.0.0.1:{self.port}", *far, *common)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{PORTS[self.backend]}"

    def token(self) -> str:
        """The cluster token a user of this backend holds (read from its file)."""
        if self.backend == "ember":
            home = Path(self.env["HOME"])
            files = sorted(home.glob(".ember/clusters/*/auth_token"))
            return files[0].read_text().strip() if files else ""
        path = Path(self.env.get("HOME", str(Path.home()))) / ".ray" / "auth_token"
        return path.read_text().strip() if path.exists() else ""

    def wait_ready(self, token: str, timeout_s: float = 120) -> None:
        """Wait until the dashboard answers its page (with the token, if any)."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            req = urllib.request.Request(self.url + "/")
            if token:
                req.add_header("Authorization", f"Bearer {token}")
            try:
                with urllib.request.urlopen(req, timeout=10) as r:
                    if r.status == 200:
                        return
            except OSError as exc:
                last = repr(exc)
            time.sleep(0.5)  # polling a starting server, with a deadline
        raise multinode.ClusterError(
            f"{self.backend}'s dashboard never answered: {last}"
        )

    def drive(self) -> None:
        subprocess.run(
            [self.python, "-c", DRIVER, self.backend],
            env=self.env,
            check=True,
            timeout=300,
            capture_output=True,
        )


def measure(c: DashboardCluster, token: str, window_s: float) -> dict[str, Any]:
    """One cold load of the dashboard in a fresh browser."""
    with cdp.Browser() as b:
        if c.backend == "ember":
            url = f"{c.url}/?token={token}"
        else:
            url = c.url + "/"
            if token:
                b.send("Network.setCookie", name="ray-authentication-token",
                       value=token, url=c.url)  # fmt: skip
        b.clear_events()
        t0 = time.monotonic()
        b.navigate(url)
        while time.monotonic() - t0 < window_s:
            time.sleep(0.1)  # the measurement window: what loads in its first seconds
        timing = b.evaluate(
            """(() => {
              const paint = performance.getEntriesByName('first-contentful-paint')[0];
              const nav = performance.getEntriesByType('navigation')[0];
              const data = performance.getEntriesByName('ember-first-data')[0];
              return {fcp: paint ? paint.startTime : null,
                      load: nav ? nav.loadEventEnd : null,
                      data: data ? data.startTime : null};
            })()"""
        )
        events = b.events
    kinds: dict[str, str] = {}
    sizes: dict[str, int] = {}
    transfer: dict[str, float] = {}
    for ev in events:
        p = ev.get("params", {})
        if ev["method"] == "Network.responseReceived":
            kinds[p["requestId"]] = p.get("type", "Other")
        elif ev["method"] == "Network.dataReceived":
            sizes[p["requestId"]] = sizes.get(p["requestId"], 0) + p.get(
                "dataLength", 0
            )
        elif ev["method"] == "Network.loadingFinished":
            transfer[p["requestId"]] = p.get("encodedDataLength", 0)
    static = [r for r, k in kinds.items() if k in STATIC_TYPES]
    api = [r for r, k in kinds.items() if k not in STATIC_TYPES]
    return {
        "static_bytes": sum(sizes.get(r, 0) for r in static),
        "static_transfer_bytes": int(sum(transfer.get(r, 0) for r in static)),
        "api_bytes": sum(sizes.get(r, 0) for r in api),
        "requests": len(kinds),
        "fcp_ms": timing["fcp"],
        "load_ms": timing["load"],
        "first_data_ms": timing["data"],
    }


def run_backend(
    backend: str, python: str, rounds: int, window_s: float
) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": []}
    with contextlib.ExitStack() as stack:
        c = DashboardCluster(backend, python)
        stack.callback(lambda: out.update(stop=c.stop()))
        c.start()
        token = c.token()
        c.wait_ready(token)
        c.drive()
        for _ in range(rounds):
            out["rounds"].append(measure(c, token, window_s))
    out["median"] = {
        k: statistics.median(vals) if vals else None
        for k in FIGURES
        for vals in [[r[k] for r in out["rounds"] if r[k] is not None]]
    }
    return out


def table(results: dict[str, Any]) -> str:
    names = list(results)
    lines = ["| figure | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in FIGURES:
        cells = []
        for n in names:
            v = results[n].get("median", {}).get(k)
            cells.append("-" if v is None else f"{v:,.0f}")
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--backends", default="ember,ray")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--window", type=float, default=5.0, help="seconds counted per load"
    )
    ap.add_argument("--ray-python", default="/tmp/ray-venv/bin/python")
    ap.add_argument("--json", default="")
    args = ap.parse_args()
    if cdp.find_chromium() is None:
        print("no chromium on PATH (apt-get install chromium)", file=sys.stderr)
        return 2
    results: dict[str, Any] = {}
    for backend in args.backends.split(","):
        python = sys.executable if backend == "ember" else args.ray_python
        if backend == "ray" and not os.path.exists(python):
            print(f"skipping ray: {python} is missing", file=sys.stderr)
            continue
        results[backend] = run_backend(backend, python, args.rounds, args.window)
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
