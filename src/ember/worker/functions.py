"""The worker's function table: functions, actor classes and job settings, from the KV.

A driver exports each remote function and actor class once into the control
service's KV (namespace ``fn``, keyed by digest) and its job settings
(namespace ``job``: ``sys.path``, namespace, driver address). A worker loads
each on first use and caches it; a job's settings are applied before the
first of its functions is unpickled, so that its modules import.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from ember import exceptions as exc_mod
from ember.protocol.messages import Address, KvGetRequest
from ember.runtime.serialization import loads_function
from ember.runtime_env import worker_env

if TYPE_CHECKING:
    from ember.runtime.core_worker import CoreWorker


class FunctionTable:
    """Functions and classes by key, loaded from the control service and cached."""

    def __init__(self, cw: CoreWorker) -> None:
        self.cw = cw
        self.functions: dict[bytes, Any] = {}
        self.jobs_loaded: set[bytes] = set()
        #: the driver of each job seen, where task output is streamed
        self.job_drivers: dict[bytes, Address] = {}

    def load_function(self, job_id: bytes, key: bytes) -> Any:
        """The function (or class) exported under ``key`` by job ``job_id``."""
        fn = self.functions.get(key)
        if fn is None:
            self.load_job(job_id)
            data = self.kv_get("fn", key)
            if data is None:
                raise exc_mod.EmberSystemError(
                    f"function {key.hex()} is not in the function table"
                )
            fn = self.functions[key] = loads_function(data)
        return fn

    def load_job(self, job_id: bytes) -> None:
        """Apply the job's settings (its driver's ``sys.path``, namespace) once."""
        if job_id in self.jobs_loaded:
            return
        self.jobs_loaded.add(job_id)
        data = self.kv_get("job", job_id)
        if data is None:
            return
        cfg = loads_function(data)
        self.cw.namespace = cfg.get("namespace", "")
        if cfg.get("driver"):
            self.job_drivers[job_id] = Address(*cfg["driver"])
        for p in reversed(cfg.get("sys_path", [])):
            if p not in sys.path:
                sys.path.insert(0, p)
        worker_env.keep_first()  # a runtime env's folders come before the driver's

    def kv_get(self, namespace: str, key: bytes) -> bytes | None:
        reply, _ = self.cw.run(
            self.cw.control.call(
                "control.kv_get", KvGetRequest(namespace=namespace, key=key)
            )
        )
        return reply.value
