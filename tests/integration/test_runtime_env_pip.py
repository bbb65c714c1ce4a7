"""pip environments: built once per node, reused by later workers, errors reach get()."""

from __future__ import annotations

import importlib.util
import os
import socket

import pytest

import ember
from ember.exceptions import ActorDiedError, RuntimeEnvSetupError

# slow: the default run stays under 15 minutes on 2 cores (.ci/run runs -m slow)
pytestmark = [pytest.mark.multiprocess, pytest.mark.slow]

#: a small pure-Python package the test environment does not have
PACKAGE = "pyjokes"


def _index_reachable() -> bool:
    try:
        socket.create_connection(("pypi.org", 443), timeout=5).close()
        return True
    except OSError:
        return False


needs_index = pytest.mark.skipif(
    not _index_reachable(), reason="the package index (pypi.org) is not reachable"
)


@pytest.fixture
def cluster():
    ember.init(num_cpus=1, configure_logging=False)
    yield
    ember.shutdown()


@ember.remote(max_calls=1)  # a fresh worker each time: the env must be found, not kept
def where_is_it():
    import pyjokes

    return pyjokes.__file__, os.getpid()


def _env_folders(module_file: str) -> tuple[str, list[str]]:
    # .../runtime_resources/pip/<hash>/venv/lib/pythonX.Y/site-packages/pyjokes/__init__.py
    env_dir = module_file.split("/venv/")[0]
    pip_root = os.path.dirname(env_dir)
    return env_dir, sorted(os.listdir(pip_root))


@needs_index
def test_pip_env_is_built_once_and_reused(cluster):
    assert importlib.util.find_spec(PACKAGE) is None, "the driver must lack the package"
    env = {"pip": [PACKAGE]}
    first, pid1 = ember.get(where_is_it.options(runtime_env=env).remote(), timeout=300)
    env_dir, listing = _env_folders(first)
    assert "/runtime_resources/pip/" in first
    marker = os.path.join(env_dir, ".ember-ready")
    built = os.stat(marker)
    # the same packages again (a new worker, other env vars): the same folder, not rebuilt
    again = {"pip": [PACKAGE], "env_vars": {"OTHER": "1"}}
    second, pid2 = ember.get(
        where_is_it.options(runtime_env=again).remote(), timeout=120
    )
    assert pid2 != pid1
    assert second == first
    assert os.stat(marker).st_ino == built.st_ino
    assert os.stat(marker).st_mtime_ns == built.st_mtime_ns
    assert _env_folders(second)[1] == listing
    # the driver's environment is untouched
    assert importlib.util.find_spec(PACKAGE) is None


@needs_index
def test_failing_pip_raises_setup_error_naming_the_package(cluster):
    missing = "ember-no-such-package-7d1f3"
    env = {"pip": [missing]}
    with pytest.raises(RuntimeEnvSetupError) as info:
        ember.get(where_is_it.options(runtime_env=env).remote(), timeout=300)
    assert missing in str(info.value)

    @ember.remote
    class Holder:
        def ping(self):
            return 1

    actor = Holder.options(runtime_env=env).remote()
    with pytest.raises(ActorDiedError) as died:
        ember.get(actor.ping.remote(), timeout=300)
    assert "RuntimeEnvSetupError" in str(died.value)
    assert missing in str(died.value)


def test_bad_runtime_env_raises_in_the_caller(cluster):
    @ember.remote
    def f():
        return 1

    # an unknown field is accepted (Ray keeps it for a plugin) and warned about
    with pytest.warns(UserWarning, match="no_such_field"):
        g = f.options(runtime_env={"no_such_field": 1})
    assert ember.get(g.remote(), timeout=60) == 1
    with pytest.raises(TypeError, match="pip"):
        f.options(runtime_env={"pip": 5}).remote()
    with pytest.raises(ValueError, match="job level"):
        f.options(runtime_env={"working_dir": "."})
    assert ember.get(f.remote(), timeout=60) == 1


@needs_index
def test_eager_install_builds_the_job_env_before_any_task():
    from tests.conftest import wait_until

    ctx = ember.init(
        num_cpus=1, configure_logging=False, runtime_env={"pip": [PACKAGE]}
    )
    try:
        pip_root = os.path.join(ctx["session_dir"], "runtime_resources", "pip")

        def ready() -> list[str]:
            if not os.path.isdir(pip_root):
                return []
            return [
                d
                for d in os.listdir(pip_root)
                if os.path.exists(os.path.join(pip_root, d, ".ember-ready"))
            ]

        assert wait_until(lambda: ready(), 300), "the job's env was not built at init"
        (built,) = ready()

        @ember.remote
        def use():
            import pyjokes

            return pyjokes.__file__

        assert f"/pip/{built}/venv/" in ember.get(use.remote(), timeout=120)
        assert ready() == [built]
    finally:
        ember.shutdown()
