"""Suite-wide isolation and checks: nothing an ember test starts may outlive its module.

The test session gets a runtime folder of its own (``XDG_RUNTIME_DIR``, which
``ember.common.session`` reads, pointed at a fresh 0700 folder; processes the
tests start inherit it), so the cluster record that a plain ``init()`` writes
and reads is this session's: concurrent pytest sessions on one machine (CI,
other checkouts) never join each other's clusters; ``EMBER_ADDRESS`` and
``RAY_ADDRESS`` are dropped for the session too.  Tests that need a folder
of their own (``ember start`` under a private HOME/TMPDIR) drop the variable.

After every test module, the cluster is shut down and we wait (with a
deadline, never a fixed sleep) until no child process of this test process
and no ember shared-memory file remains; a leak fails the module's last test.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import time

import psutil
import pytest
from hypothesis import settings

# Property tests count examples, not time: on a loaded 2-core CI machine a
# per-example deadline only measures the machine (a 416 ms example was seen).
settings.register_profile("ember", deadline=None)
settings.load_profile("ember")

#: an address here would send every plain init() of the suite to that cluster
ADDRESS_VARS = ("EMBER_ADDRESS", "RAY_ADDRESS")


def ember_shm_files() -> set[str]:
    """Arena files of sessions started by this test process (others may run beside us)."""
    return set(glob.glob(f"/dev/shm/ember-session_*_{os.getpid()}-*"))


def live_children() -> list[psutil.Process]:
    """Our descendants, and orphans of sessions we started (re-parented to init)."""
    out = []
    mine = f"_{os.getpid()}/"
    procs = set(psutil.Process().children(recursive=True))
    for p in psutil.process_iter(["cmdline"]):
        if mine in " ".join(p.info["cmdline"] or ()) and p.pid != os.getpid():
            procs.add(p)
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def wait_until(predicate, timeout_s: float = 15.0, interval_s: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval_s)
    return predicate()


#: init() starts no dashboard in the suite (it costs ~0.9 s of CPU per cluster,
#: hundreds of times): the dashboard's own modules turn it back on (below)
os.environ.setdefault("EMBER_INCLUDE_DASHBOARD", "0")


@pytest.fixture(autouse=True, scope="module")
def _dashboard_where_tested(request):
    """In a module about the dashboard, init() starts one, as it does for users
    (module-scoped and autouse, so it comes before the module's own clusters)."""
    if "dashboard" not in request.module.__name__:
        yield
        return
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("EMBER_INCLUDE_DASHBOARD", raising=False)
        yield


@pytest.fixture(autouse=True, scope="session")
def _private_runtime_folder():
    """This session's own runtime folder (see the module docstring)."""
    folder = tempfile.mkdtemp(prefix="emrt", dir="/tmp")  # 0700; short socket paths
    names = ("XDG_RUNTIME_DIR", *ADDRESS_VARS)
    saved = {name: os.environ.pop(name, None) for name in names}
    os.environ["XDG_RUNTIME_DIR"] = folder
    yield folder
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True, scope="module")
def _no_leaks_after_module():
    shm_before = ember_shm_files()
    yield
    try:
        import ember

        if ember.is_initialized():
            ember.shutdown()
    except ImportError:
        pass
    ok = wait_until(
        lambda: not live_children() and not (ember_shm_files() - shm_before)
    )
    if not ok:
        leaked = [" ".join(p.cmdline()[:3]) for p in live_children()]
        shm = sorted(ember_shm_files() - shm_before)
        for p in live_children():
            p.kill()
        for f in shm:
            os.unlink(f)
        pytest.fail(f"leaked processes {leaked} / shared memory {shm} after the module")
