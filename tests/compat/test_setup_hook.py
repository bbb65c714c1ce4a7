"""init(runtime_env={"worker_process_setup_hook": ...}): once in every worker of the job."""

from __future__ import annotations

import os
import sys
import warnings

import pytest

import ember as ray

try:  # Ray pickles functions with its own copy of cloudpickle
    from ember import cloudpickle  # type: ignore[attr-defined]
except ImportError:
    import cloudpickle

pytestmark = pytest.mark.cluster_only("the hook runs in worker processes")
IS_EMBER = ray.__name__ == "ember"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Workers need not import this test module: its functions travel by value.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
#: what a user sets so that workers can import a hook given by module path
ON_PATH = {"PYTHONPATH": os.pathsep.join([REPO, os.environ.get("PYTHONPATH", "")])}


def _count_runs():
    import os

    os.environ["EMBER_TEST_HOOK_RUNS"] = str(
        int(os.environ.get("EMBER_TEST_HOOK_RUNS", "0")) + 1
    )


@ray.remote
def runs_here():
    return os.getpid(), os.environ.get("EMBER_TEST_HOOK_RUNS")


@ray.remote
class Probe:
    def runs_here(self):
        return os.getpid(), os.environ.get("EMBER_TEST_HOOK_RUNS")


def test_a_callable_hook_runs_once_in_every_worker_before_tasks_and_actors(
    shutdown_only,
):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the hook is applied: no "ignored" warning
        ray.init(num_cpus=2, runtime_env={"worker_process_setup_hook": _count_runs})
    results = ray.get([runs_here.remote() for _ in range(20)])
    assert {runs for _, runs in results} == {"1"}  # ran, and once per process
    actors = [Probe.remote() for _ in range(2)]
    results = ray.get([a.runs_here.remote() for a in actors])
    assert [runs for _, runs in results] == ["1", "1"]
    assert len({pid for pid, _ in results}) == 2
    assert "EMBER_TEST_HOOK_RUNS" not in os.environ  # not in the driver


def test_a_hook_given_by_module_path_runs_in_the_workers(shutdown_only):
    ray.init(
        num_cpus=1,
        runtime_env={
            "worker_process_setup_hook": "tests.compat.setup_hooks.mark_process",
            "env_vars": ON_PATH,
        },
    )
    _, runs = ray.get(runs_here.remote())
    assert runs == "1"


def test_a_hook_that_is_not_a_function_is_refused_at_init(shutdown_only):
    with pytest.raises(TypeError, match="worker_process_setup_hook"):
        ray.init(num_cpus=1, runtime_env={"worker_process_setup_hook": 3})


def _failing_hook():
    raise ValueError("the hook failed on purpose")


def test_a_failing_hook_fails_the_jobs_tasks_and_actors(shutdown_only):
    ray.init(num_cpus=1, runtime_env={"worker_process_setup_hook": _failing_hook})

    @ray.remote(max_retries=0)
    def f():
        return 1

    with pytest.raises(ray.exceptions.RayError) as info:
        ray.get(f.remote(), timeout=120)
    if IS_EMBER:  # Ray says only that the worker died; ember names the hook
        assert isinstance(info.value, ray.exceptions.RuntimeEnvSetupError)
        assert "worker_process_setup_hook _failing_hook" in str(info.value)
        assert "the hook failed on purpose" in str(info.value)
    a = Probe.remote()
    with pytest.raises(ray.exceptions.RayActorError) as info:
        ray.get(a.runs_here.remote(), timeout=120)
    if IS_EMBER:
        assert "the hook failed on purpose" in str(info.value)
