"""runtime_env checking as Ray does it: normal forms and the errors of bad input."""

from __future__ import annotations

import pytest

import ember as ray
from ember.runtime_env import RuntimeEnv, RuntimeEnvConfig


def test_runtime_env_normalises_pip_like_ray():
    env = RuntimeEnv(pip=["six", "six", "attrs"], env_vars={"A": "1"})
    assert env["pip"]["packages"] == ["six", "attrs"]
    assert env["pip"]["pip_check"] is False
    assert env.env_vars() == {"A": "1"}
    assert env.has_pip()
    assert isinstance(env, dict)


def test_runtime_env_rejects_conflicting_installers():
    with pytest.raises(ValueError):
        RuntimeEnv(pip=["six"], uv=["six"])


def test_runtime_env_config_checks_its_fields():
    assert RuntimeEnvConfig()["setup_timeout_seconds"] == 600
    assert RuntimeEnvConfig()["eager_install"] is True
    with pytest.raises(ValueError):
        RuntimeEnvConfig(setup_timeout_seconds=0)
    with pytest.raises(TypeError):
        RuntimeEnvConfig(setup_timeout_seconds="10")
    with pytest.raises(TypeError):
        RuntimeEnvConfig(eager_install="yes")


@pytest.mark.parametrize(
    ("env", "error"),
    [
        ({"pip": 5}, TypeError),
        ({"pip": {"packages": ["six"], "bogus": True}}, ValueError),
        ({"env_vars": {"A": 1}}, TypeError),
        ({"excludes": "*.log"}, TypeError),
        ({"py_modules": "mod"}, TypeError),
    ],
)
def test_task_options_reject_bad_runtime_envs(ray_module, env, error):
    @ray.remote
    def f():
        return 1

    with pytest.raises(error):
        f.options(runtime_env=env).remote()


def test_local_folders_are_job_level_only(ray_module, tmp_path):
    @ray.remote
    def f():
        return 1

    with pytest.raises(ValueError):
        f.options(runtime_env={"working_dir": str(tmp_path)}).remote()
    with pytest.raises(ValueError):
        f.options(runtime_env={"py_modules": [str(tmp_path)]}).remote()


def test_unknown_fields_do_not_fail_a_task(ray_module):
    @ray.remote
    def f():
        return 1

    assert RuntimeEnv(my_plugin_field=1)["my_plugin_field"] == 1
    assert ray.get(f.options(runtime_env={"my_plugin_field": 1}).remote()) == 1
