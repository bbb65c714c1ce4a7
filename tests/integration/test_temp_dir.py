"""``init(_temp_dir=...)``: the embedded cluster's session goes there, as Ray's."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

import pytest

import ember
from ember.api import ignored_options

pytestmark = pytest.mark.multiprocess


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(ignored_options, "_warned", set())


@pytest.fixture
def short_dir():
    """A folder with a short path (unix socket paths must fit)."""
    path = tempfile.mkdtemp(prefix="emtd", dir="/tmp")
    yield path
    shutil.rmtree(path, ignore_errors=True)


def test_the_session_of_init_goes_under_temp_dir(short_dir):
    temp = os.path.join(short_dir, "ray")
    ember.init(num_cpus=1, _temp_dir=temp, configure_logging=False)
    try:
        ctx = ember.get_runtime_context()
        assert ctx.get_temp_dir() == temp
        name = ctx.get_session_name()
        assert os.path.realpath(os.path.join(temp, "session_latest")) == os.path.join(
            temp, name
        )
        assert stat.S_IMODE(os.stat(temp).st_mode) == 0o700

        @ember.remote
        def one():
            return 1

        assert ember.get(one.remote(), timeout=60) == 1
        # The control service keeps the Prometheus targets here too (none: the
        # embedded cluster exports no metrics unless asked).
        assert os.path.exists(
            os.path.join(temp, name, "prom_metrics_service_discovery.json")
        )
    finally:
        ember.shutdown()


def test_temp_dir_must_be_an_absolute_path():
    with pytest.raises(ValueError, match="temp_dir must be absolute path or None"):
        ember.init(_temp_dir="relative/dir", configure_logging=False)
    with pytest.raises(TypeError, match="_temp_dir must be a path"):
        ember.init(_temp_dir=3, configure_logging=False)
    assert not ember.is_initialized()


def test_temp_dir_in_local_mode_warns():
    with pytest.warns(UserWarning, match=r"init\(_temp_dir=\.\.\.\)"):
        ember.init(local_mode=True, _temp_dir="/tmp/elsewhere")
    ember.shutdown()
