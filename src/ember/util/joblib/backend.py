"""The joblib backend that runs each batch of calls joblib dispatches as one ember task.

joblib's auto-batching (``AutoBatchingMixin``) sizes the batches from how long
past batches took, from dispatch to completion, so short calls are grouped
until a batch hides the cost of a task; ``pre_dispatch`` bounds how many are
in flight. Each batch (a ``BatchedCalls``, pickled with cloudpickle by ember)
runs in a worker; its result comes back through the ref's future, whose
completion calls joblib's callback.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

from joblib._parallel_backends import (
    AutoBatchingMixin,
    FallbackToBackend,
    ParallelBackendBase,
    SequentialBackend,
)

import ember


@ember.remote
def _run_batch(batch: Any) -> Any:
    """Run one joblib batch (a list of calls) in a worker and return its results."""
    return batch()


def cluster_cpus() -> int:
    """The CPUs of the cluster this program is connected to (connecting if need be)."""
    if not ember.is_initialized():
        ember.init()
    return max(int(ember.cluster_resources().get("CPU", 1)), 1)


class EmberBackend(AutoBatchingMixin, ParallelBackendBase):
    """joblib backend: batches become ember tasks; ``n_jobs=-1`` is the cluster's CPUs.

    ``n_jobs=1`` (joblib's default) runs in the calling process, as with
    joblib's process backends and Ray's.

    ``ray_remote_args`` (on ``parallel_backend(...)`` or ``Parallel(...)``) are
    the ``.options()`` of every batch's task, e.g. ``{"num_cpus": 2}``.
    """

    supports_retrieve_callback = True
    supports_timeout = True

    def __init__(
        self,
        nesting_level: int | None = None,
        inner_max_num_threads: int | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            nesting_level=nesting_level,
            inner_max_num_threads=inner_max_num_threads,
            **kwargs,
        )
        self.ray_remote_args = dict(ray_remote_args or {})
        self._remote_args = dict(self.ray_remote_args)
        self._lock = threading.Lock()
        self._in_flight: set[Any] = set()

    def effective_n_jobs(self, n_jobs: int | None) -> int:
        if n_jobs == 0:
            raise ValueError("n_jobs == 0 in Parallel has no meaning")
        if n_jobs is None:
            return 1
        if n_jobs < 0:
            return max(cluster_cpus() + 1 + n_jobs, 1)
        return n_jobs

    def configure(
        self,
        n_jobs: int = 1,
        parallel: Any = None,
        prefer: str | None = None,
        require: str | None = None,
        ray_remote_args: dict[str, Any] | None = None,
        **backend_kwargs: Any,
    ) -> int:
        del prefer, require, backend_kwargs
        if not ember.is_initialized():
            ember.init()
        self.parallel = parallel
        self._remote_args = dict(
            self.ray_remote_args if ray_remote_args is None else ray_remote_args
        )
        n = self.effective_n_jobs(n_jobs)
        if n == 1:  # one job: run it here, as joblib's process backends (and Ray's) do
            raise FallbackToBackend(SequentialBackend(nesting_level=self.nesting_level))
        return n

    def submit(self, func: Any, callback: Any = None) -> concurrent.futures.Future[Any]:
        task = (
            _run_batch.options(**self._remote_args) if self._remote_args else _run_batch
        )
        ref = task.remote(func)
        with self._lock:
            self._in_flight.add(ref)
        future = ref.future()
        future.add_done_callback(lambda _f: self._done(ref))
        if callback is not None:
            future.add_done_callback(callback)
        return future

    def retrieve_result_callback(self, out: concurrent.futures.Future[Any]) -> Any:
        return out.result()

    def abort_everything(self, ensure_ready: bool = True) -> None:
        """Cancel the batches still running (a call failed; joblib drops the rest)."""
        del ensure_ready
        with self._lock:
            pending, self._in_flight = list(self._in_flight), set()
        for ref in pending:
            ember.cancel(ref)

    def terminate(self) -> None:
        with self._lock:
            self._in_flight.clear()
        self.reset_batch_stats()

    def _done(self, ref: Any) -> None:
        with self._lock:
            self._in_flight.discard(ref)
