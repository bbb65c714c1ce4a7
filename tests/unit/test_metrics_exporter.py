"""The ``/metrics`` endpoint: Prometheus text for the cluster token, 401 for anyone else.

Served on 127.0.0.1 by the test's own event loop (as a daemon serves it on
its loop) and read with an HTTP client, as Prometheus reads it.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from collections.abc import Iterator

import aiohttp
import pytest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from ember.metrics.exporter import MetricsExporter, MetricsExportError

TOKEN = b"t" * 32


class Answers(Collector):
    def __init__(self) -> None:
        self.calls = 0

    def collect(self) -> Iterator[Metric]:
        self.calls += 1
        g = GaugeMetricFamily("ember_answer", "the answer", labels=["k"])
        g.add_metric(["v"], 42.0)
        yield g


class Broken(Collector):
    def collect(self) -> Iterator[Metric]:
        raise RuntimeError("cannot read")


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    async with aiohttp.ClientSession() as s, s.get(url, headers=headers or {}) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.text()


def test_token_required_and_text_served():
    async def main() -> None:
        ex = MetricsExporter(TOKEN)
        answers = Answers()
        ex.add(answers)
        ex.add(Broken())  # costs its own samples only
        port = await ex.start("127.0.0.1", 0)
        assert ex.address == f"127.0.0.1:{port}"
        url = f"http://127.0.0.1:{port}/metrics"
        try:
            for headers in (
                None,
                {"Authorization": "Bearer wrong"},
                {"Authorization": TOKEN.decode()},  # no scheme
                {"Authorization": "Basic " + TOKEN.decode()},
                {"Authorization": "Bearer " + TOKEN.decode() + "x"},
            ):
                status, _, body = await _get(url, headers)
                assert status == 401, headers
                assert "Bearer" in body
            assert answers.calls == 0  # nothing is computed for a refused scrape
            status, ctype, body = await _get(
                url, {"Authorization": "Bearer " + TOKEN.decode()}
            )
            assert status == 200
            assert ctype.startswith("text/plain")
            (fam,) = list(text_string_to_metric_families(body))
            assert fam.name == "ember_answer"
            assert fam.samples[0].value == 42.0
            assert (ex.scrapes, ex.refused) == (1, 5)
        finally:
            await ex.close()
        with pytest.raises(aiohttp.ClientConnectionError):
            await _get(url)

    asyncio.run(main())


def test_a_taken_port_is_a_typed_error():
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            s.listen()
            ex = MetricsExporter(TOKEN)
            with pytest.raises(MetricsExportError, match="--metrics-export-port"):
                await ex.start("127.0.0.1", s.getsockname()[1])

    asyncio.run(main())


def test_daemons_without_metrics_do_not_load_the_http_stack():
    # the embedded cluster exports nothing by default: its start-up must not pay
    # for aiohttp and prometheus_client
    code = (
        "import sys, ember.node.daemon, ember.control.service, ember.util.metrics\n"
        "print(sorted(m for m in ('aiohttp', 'prometheus_client') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_control_service_serves_task_counts_when_it_keeps_task_events(tmp_path):
    from ember.control.service import ControlService

    class Table:  # the shape of control/task_events.TaskEventTable
        def state_counts(self):
            return {("FINISHED", "f", False): 3, ("FAILED", "f", True): 1}

    async def main() -> None:
        svc = ControlService(TOKEN, str(tmp_path))
        svc.task_events = Table()  # type: ignore[attr-defined]
        await svc.start_metrics("127.0.0.1", 0)
        try:
            host, _, port = svc.metrics_address.rpartition(":")
            assert int(port) > 0
            assert host == "127.0.0.1"
            _, _, body = await _get(
                f"http://{svc.metrics_address}/metrics",
                {"Authorization": "Bearer " + TOKEN.decode()},
            )
        finally:
            await svc.metrics.close()
            svc.server.close()
        tasks = {
            (s.labels["State"], s.labels["IsRetry"]): s.value
            for fam in text_string_to_metric_families(body)
            for s in fam.samples
            if s.name == "ember_tasks"
        }
        assert tasks == {("FINISHED", "0"): 3.0, ("FAILED", "1"): 1.0}

    asyncio.run(main())
