"""The driver's side of ``init(runtime_env={"worker_process_setup_hook": ...})``.

As in Ray, the hook is a job setting: :func:`split` takes it out of
``init()``'s runtime_env (checking it, and pickling a callable before any
process starts, so an unpicklable hook fails at once), and :func:`install`
exports a callable into the function table and adds the env var of
:mod:`ember.common.setup_hook` to the job's ``env_vars``. Every worker that
runs a task or actor of the job then runs the hook once, before its first
call (``worker/setup_hook.py``). In a task's or actor's own ``runtime_env``
the field has no effect (as in Ray), and ember warns about it
(``api/ignored_options.py``).
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.common import setup_hook
from ember.protocol.messages import KvPutRequest
from ember.runtime.function_pickles import dumps_function

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker

FIELD = "worker_process_setup_hook"


class Hook:
    """A checked hook: a dotted path, or a callable and its pickle."""

    def __init__(self, value: Any) -> None:
        self.value = value
        self.pickled = b""
        if isinstance(value, str):
            if not value or "." not in value.strip("."):
                raise ValueError(
                    f"worker_process_setup_hook must be a function or the dotted path "
                    f"of one ('module.function'), got {value!r}."
                )
            self.name = value
            return
        if not callable(value):
            raise TypeError(
                f"worker_process_setup_hook must be a function, got {type(value)}."
            )
        self.name = getattr(value, "__qualname__", None) or repr(value)
        try:
            self.pickled = dumps_function(value)
        except (TypeError, ValueError) as exc:
            raise exc_mod.RuntimeEnvSetupError(
                f"Failed to export the worker_process_setup_hook {self.name}: {exc}"
            ) from exc


def split(runtime_env: Any) -> tuple[Any, Hook | None]:
    """``init()``'s runtime_env without the hook, and the hook (checked), if any."""
    if not isinstance(runtime_env, dict) or FIELD not in runtime_env:
        return runtime_env, None
    rest = dict(runtime_env)
    value = rest.pop(FIELD)
    if value is None:
        return rest, None
    env_vars = rest.get("env_vars")
    if isinstance(env_vars, dict) and setup_hook.ENV_VAR in env_vars:
        raise ValueError(
            f"runtime_env['env_vars'] must not set {setup_hook.ENV_VAR}: ember uses it "
            "for worker_process_setup_hook."
        )
    return rest, Hook(value)


def install(cw: CoreWorker, runtime_env: dict[str, Any], hook: Hook) -> dict[str, Any]:
    """The job's runtime_env, carrying the hook to every worker of the job."""
    if hook.pickled:
        key = hashlib.blake2b(hook.pickled, digest_size=16).digest()
        cw.run(
            cw.control.call(
                "control.kv_put",
                KvPutRequest(
                    namespace="fn", key=key, value=hook.pickled, overwrite=False
                ),
            )
        )
        value = setup_hook.encode_key(key)
    else:
        value = hook.value
    env = dict(runtime_env)
    env["env_vars"] = {**(env.get("env_vars") or {}), setup_hook.ENV_VAR: value}
    # What runtime_context.runtime_env shows (Ray keeps the function's name there).
    env[FIELD] = hook.name
    return env
