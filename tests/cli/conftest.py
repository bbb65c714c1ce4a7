"""The ``home`` fixture of the command-line tests: a private HOME and TMPDIR."""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest
from tests.cli.clitools import _alive, _arenas, _recorded_pids, ember_cli
from tests.conftest import wait_until

from ember.common import session


@pytest.fixture
def home(monkeypatch):
    """A private HOME and TMPDIR (short: unix socket paths must fit)."""
    root = tempfile.mkdtemp(prefix="emc", dir="/tmp")
    os.makedirs(os.path.join(root, "home"))
    monkeypatch.setenv("HOME", os.path.join(root, "home"))
    monkeypatch.setenv("TMPDIR", root)
    monkeypatch.setattr(tempfile, "tempdir", root)
    monkeypatch.delenv(session.TOKEN_ENV, raising=False)
    monkeypatch.delenv(session.ADDRESS_ENV, raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("XDG_RUNTIME_DIR", raising=False)
    yield root
    leftover = _recorded_pids()
    ember_cli("stop", "--force")
    assert wait_until(lambda: not _alive(leftover)), _alive(leftover)
    assert not _arenas(root)
    shutil.rmtree(root, ignore_errors=True)
