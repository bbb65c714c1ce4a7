"""worker_process_setup_hook: checked at init(), carried as one env var, warned about elsewhere."""

from __future__ import annotations

import warnings

import pytest

from ember import exceptions
from ember.api import ignored_options, setup_hook
from ember.common import setup_hook as hook_env


def _hook():
    pass


def test_init_takes_the_hook_out_of_the_runtime_env():
    rest, hook = setup_hook.split(
        {"worker_process_setup_hook": _hook, "env_vars": {"A": "1"}}
    )
    assert rest == {"env_vars": {"A": "1"}}
    assert hook is not None
    assert hook.name == "_hook"
    assert hook.pickled
    rest, hook = setup_hook.split({"worker_process_setup_hook": "pkg.mod.fn"})
    assert hook is not None
    assert (hook.name, hook.pickled) == ("pkg.mod.fn", b"")
    assert setup_hook.split({"env_vars": {}}) == ({"env_vars": {}}, None)


@pytest.mark.parametrize(("value", "error"), [(3, TypeError), ("nodots", ValueError)])
def test_a_hook_that_is_neither_a_function_nor_a_dotted_path_is_refused(value, error):
    with pytest.raises(error, match="worker_process_setup_hook"):
        setup_hook.split({"worker_process_setup_hook": value})


def test_an_unpicklable_hook_fails_at_init_naming_it():
    import threading

    lock = threading.Lock()

    def holds_a_lock():
        return lock

    with pytest.raises(exceptions.RuntimeEnvSetupError, match="holds_a_lock"):
        setup_hook.split({"worker_process_setup_hook": holds_a_lock})


def test_the_reserved_env_var_cannot_be_set_by_hand():
    with pytest.raises(ValueError, match=hook_env.ENV_VAR):
        setup_hook.split(
            {
                "worker_process_setup_hook": _hook,
                "env_vars": {hook_env.ENV_VAR: "x"},
            }
        )


def test_the_env_value_names_a_key_or_a_path():
    key = bytes(range(16))
    assert hook_env.decode(hook_env.encode_key(key)) == (key, "")
    assert hook_env.decode("pkg.fn") == (None, "pkg.fn")


def test_in_a_task_runtime_env_the_hook_warns_that_it_is_a_job_setting(monkeypatch):
    monkeypatch.setattr(ignored_options, "_warned", set())
    with pytest.warns(UserWarning, match="job setting"):
        ignored_options.check_runtime_env(
            {"worker_process_setup_hook": _hook}, "runtime_env"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ignored_options.check_runtime_env({"env_vars": {"A": "1"}}, "runtime_env")
