"""Running the job's ``worker_process_setup_hook`` once in this worker, before its first call.

The hook reaches the worker as an env var (:mod:`ember.common.setup_hook`):
workers are pooled by their environment, so a worker started with it only
ever runs calls of jobs that asked for this hook. The main thread runs it
before the first task or actor constructor (after the job's ``sys.path`` is
applied, so a ``"module.function"`` of the driver's folder imports). If it
raises, the error names the hook and carries its traceback; the executor
fails the call with ``RuntimeEnvSetupError`` and this worker exits, so the
next call gets a fresh worker that tries again (and fails the same way if
the hook always raises), rather than a worker half set up.
"""

from __future__ import annotations

import importlib
import os
import traceback
from typing import TYPE_CHECKING, Any

from ember.common import setup_hook
from ember.runtime.serialization import loads_function

if TYPE_CHECKING:
    from ember.worker.functions import FunctionTable


class SetupHook:
    """This process's setup hook: run at most once; its failure, if it failed."""

    def __init__(self, functions: FunctionTable, value: str | None = None) -> None:
        self._functions = functions
        self._value = os.environ.get(setup_hook.ENV_VAR, "") if value is None else value
        self._ran = not self._value
        #: why the hook failed (None: it ran, or there is none)
        self.error: str | None = None

    def ensure(self, job_id: bytes) -> str | None:
        """Main thread: run the hook if it has not run; its error text, if it failed."""
        if self._ran:
            return self.error
        self._ran = True
        key, path = setup_hook.decode(self._value)
        what = (
            f"worker_process_setup_hook {path}" if path else "worker_process_setup_hook"
        )
        try:
            self._functions.load_job(job_id)
            fn = self._load(key, path)
        except Exception:  # noqa: BLE001  (user code: report it, with its traceback)
            self.error = (
                f"Failed to load the {what} given to ember.init(runtime_env="
                "{'worker_process_setup_hook': ...}). Make sure the module can be "
                f"imported by the workers.\n{traceback.format_exc()}"
            )
            return self.error
        name = getattr(fn, "__qualname__", path or repr(fn))
        try:
            fn()
        except Exception:  # noqa: BLE001  (user code: report it, with its traceback)
            self.error = (
                f"Failed to execute the worker_process_setup_hook {name} given to "
                "ember.init(runtime_env={'worker_process_setup_hook': ...}).\n"
                f"{traceback.format_exc()}"
            )
        return self.error

    def _load(self, key: bytes | None, path: str) -> Any:
        if key is not None:
            data = self._functions.kv_get("fn", key)
            if data is None:
                raise LookupError(f"the hook {key.hex()} is not in the function table")
            return loads_function(data)
        module, _, attr = path.rpartition(".")
        return getattr(importlib.import_module(module), attr)
