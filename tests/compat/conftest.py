"""Fixtures for the compatibility suite.

Every test here uses only the public API, imported as ``import ember as ray``, and is
meant to pass unchanged on real Ray (run it through a shim that aliases ``ember`` to
``ray``). Tests that check a place where ember deliberately differs from Ray carry the
``ember_only`` marker and are skipped on real Ray.

Each test that uses a cluster fixture (``ray_module``, ``ray_start_regular``,
``shutdown_only``) runs twice on ember: against a cluster and in local mode
(``init(local_mode=True)``: everything serial in the driver). In local mode the
fixtures make every ``ray.init(...)`` of the test a local-mode one, so test bodies stay
plain Ray. Tests that need what only a cluster has (separate processes, concurrency,
crashing or killing workers, timing) carry ``cluster_only("why")`` and are skipped
in local mode. Ray 2.60 removed ``local_mode``, so on real Ray only the cluster
variant runs.
"""

from __future__ import annotations

import asyncio
import functools
import time

import pytest

import ember as ray

# True when the shim resolved ``ember`` to the real Ray package.
IS_REAL_RAY = ray.__name__ == "ray"


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "ember_only: checks a behaviour where ember intentionally differs from Ray; "
        "skipped when the suite runs against real Ray",
    )
    config.addinivalue_line(
        "markers",
        "cluster_only(reason): needs a real cluster (processes, concurrency, crashes, "
        "timing); skipped in local mode",
    )


def pytest_collection_modifyitems(config, items):
    if not IS_REAL_RAY:
        return
    skip = pytest.mark.skip(
        reason="ember_only: ember intentionally differs from Ray here"
    )
    for item in items:
        if "ember_only" in item.keywords:
            item.add_marker(skip)


def _shutdown_if_running():
    if ray.is_initialized():
        ray.shutdown()


#: How the suite runs: against a cluster and (ember only) in local mode.
MODES = ["cluster"] if IS_REAL_RAY else ["cluster", "local_mode"]
_INIT = ray.init


@pytest.fixture(scope="module", params=MODES)
def ember_mode(request):
    """``"cluster"`` or ``"local_mode"`` (module-scoped, so a module's shared cluster is
    started once per mode)."""
    return request.param


@pytest.fixture
def _mode(request, ember_mode, monkeypatch):
    """Skip ``cluster_only`` tests in local mode, and make ``ray.init`` local there."""
    if ember_mode == "local_mode":
        marker = request.node.get_closest_marker("cluster_only")
        if marker is not None:
            reason = marker.args[0] if marker.args else marker.kwargs.get("reason", "")
            pytest.skip(f"cluster_only: {reason}")
        monkeypatch.setattr(ray, "init", functools.partial(_INIT, local_mode=True))
    return ember_mode


@pytest.fixture
def shutdown_only(_mode):
    """The test calls init() itself; the cluster is stopped afterwards."""
    _shutdown_if_running()
    yield None
    ray.shutdown()


@pytest.fixture
def ray_start_regular(_mode):
    """A fresh two-CPU cluster for this test alone."""
    _shutdown_if_running()
    ctx = ray.init(num_cpus=2)
    yield ctx
    ray.shutdown()


# Settings of the cluster shared by the tests of one module.
MODULE_CLUSTER_KWARGS = {"num_cpus": 4, "resources": {"custom": 2}}


@pytest.fixture(scope="module")
def _module_cluster(ember_mode):
    _shutdown_if_running()  # a cluster of the other mode, or of a test before
    yield
    ray.shutdown()


@pytest.fixture
def ray_module(_module_cluster, _mode):
    """A cluster shared by the tests of one module (started on first use, and again if a
    test in between stopped it). Use it for tests that leave no lasting state behind."""
    if not ray.is_initialized():
        ray.init(**MODULE_CLUSTER_KWARGS)
    return None


def wait_for_condition(predicate, timeout=30.0, retry_interval=0.05, message=""):
    """Poll ``predicate`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_exc = None
    while time.monotonic() < deadline:
        try:
            if predicate():
                return
        except Exception as exc:  # keep polling; report the last error at the end
            last_exc = exc
        time.sleep(retry_interval)
    detail = f" (last error: {last_exc!r})" if last_exc else ""
    raise AssertionError(f"condition not met within {timeout}s: {message}{detail}")


def _make_helper_classes():
    # Defined inside a function so that they are pickled by value and workers never
    # need to import this conftest module.

    @ray.remote(num_cpus=0)
    class SignalActor:
        """A latch: ``wait`` blocks until someone calls ``send``.

        Async, so many waiters can block on it at once. It also counts the callers
        currently waiting, which lets a test know that N tasks have reached a point."""

        def __init__(self):
            self._event = asyncio.Event()
            self._waiting = 0

        async def send(self, clear=False):
            self._event.set()
            if clear:
                self._event.clear()

        async def wait(self, should_wait=True):
            if should_wait:
                self._waiting += 1
                try:
                    await self._event.wait()
                finally:
                    self._waiting -= 1

        async def num_waiting(self):
            return self._waiting

    @ray.remote(num_cpus=0)
    class CounterActor:
        """A shared counter that tasks can bump (e.g. to count attempts)."""

        def __init__(self):
            self._n = 0

        def incr(self, by=1):
            self._n += by
            return self._n

        def get(self):
            return self._n

    return SignalActor, CounterActor


_SignalActor, _CounterActor = _make_helper_classes()


@pytest.fixture
def signal_cls():
    """The SignalActor class; create instances after the cluster is up."""
    return _SignalActor


@pytest.fixture
def counter_cls():
    """The CounterActor class; create instances after the cluster is up."""
    return _CounterActor


@pytest.fixture
def wait_for():
    """The ``wait_for_condition(predicate, timeout=..., message=...)`` helper."""
    return wait_for_condition
