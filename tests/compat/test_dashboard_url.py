"""``init()``'s context names the dashboard (``host:port``, no scheme), and the dashboard
it names answers; ``include_dashboard=False`` starts none."""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

import pytest

import ember as ray


def _answers(url: str) -> bool:
    """Whether something serves HTTP at ``url`` (any status: ember's needs a token)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{url}/", timeout=5):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            time.sleep(0.2)  # the dashboard starts in the background
    return False


@pytest.mark.cluster_only("local mode runs no dashboard")
def test_init_returns_the_dashboard_url(shutdown_only):
    ctx = ray.init(num_cpus=1)
    assert re.fullmatch(r"127\.0\.0\.1:\d+", ctx.dashboard_url), ctx.dashboard_url
    assert ctx.address_info["webui_url"] == ctx.dashboard_url
    assert _answers(ctx.dashboard_url)


@pytest.mark.cluster_only("local mode runs no dashboard")
def test_include_dashboard_false_starts_none(shutdown_only):
    ctx = ray.init(num_cpus=1, include_dashboard=False)
    assert not ctx.dashboard_url
