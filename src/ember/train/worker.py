"""One training worker: an actor that runs the user's loop in a thread with a session.

The driver (``trainer.py``) starts the loop with :meth:`TrainWorker.start`,
then asks :meth:`TrainWorker.next` for the worker's next event, which waits
until the loop calls ``report()`` (the loop then blocks until the driver says
:meth:`resume`), returns, or raises.  ``report()`` copies a checkpoint into
the run's folder as ``checkpoint_NNNNNN`` first, the same name on every rank,
so the ranks' files of one report land in one checkpoint.
"""

from __future__ import annotations

import queue
import threading
import traceback
from typing import Any

import ember
from ember.air import session as air_session
from ember.air.checkpoint import Checkpoint
from ember.util import collective


class TrainSession(air_session.Session):
    """A session that also knows the worker's place and its dataset shards."""

    def __init__(
        self,
        info: air_session.TrialInfo,
        checkpoint: Checkpoint | None,
        next_index: int,
        shards: dict[str, Any],
        events: queue.Queue[Any],
    ) -> None:
        super().__init__(info, checkpoint, next_index)
        self.shards = shards
        self.reports = events  # reports and the loop's end, in one queue
        self.round = next_index

    def report(self, metrics: dict[str, Any], checkpoint: Checkpoint | None) -> None:
        # a checkpoint is named by its round, so that every rank that saves one
        # in the same round writes into the same folder
        self.next_index = self.round
        self.round += 1
        super().report(metrics, checkpoint)


class TrainWorker:
    """Hosts one rank of a training run."""

    def __init__(self) -> None:
        self._session: TrainSession | None = None
        self._thread: threading.Thread | None = None
        self._events: queue.Queue[Any] = queue.Queue()

    def where(self) -> tuple[str, str]:
        ctx = ember.get_runtime_context()
        return ctx.get_node_id(), ember.util.get_node_ip_address()

    def join_group(self, world_size: int, rank: int, rendezvous: str) -> None:
        """Join the run's collective group (named ``"default"`` for the user)."""
        if collective.is_group_initialized("default"):
            collective.destroy_collective_group("default")
        collective.init_collective_group(
            world_size,
            rank,
            backend="gloo",
            group_name="default",
            rendezvous=rendezvous,
        )

    def start(
        self,
        fn: Any,
        config: dict[str, Any] | None,
        info: air_session.TrialInfo,
        checkpoint: Checkpoint | None,
        next_index: int,
        shards: dict[str, Any],
    ) -> None:
        self._events = queue.Queue()
        session = TrainSession(info, checkpoint, next_index, shards, self._events)
        self._session = session

        def run() -> None:
            air_session.bind(session)
            try:
                out = fn(config) if config is not None else _call(fn)
                self._events.put(("done", out))
            except air_session.SessionStopped:
                self._events.put(("stopped", None))
            except BaseException as exc:  # noqa: BLE001 (reported to the driver)
                exc.__traceback_text__ = traceback.format_exc()  # type: ignore[attr-defined]
                self._events.put(("error", exc))
            finally:
                air_session.bind(None)

        self._thread = threading.Thread(target=run, name="train-loop", daemon=True)
        self._thread.start()

    def next(self) -> tuple[str, Any]:
        """The next event: ("report", (metrics, checkpoint dir name or None)),
        ("done", return value), ("stopped", None) or ("error", exception)."""
        item = self._events.get()
        if isinstance(item, air_session.Report):
            return "report", (item.metrics, item.checkpoint_dir_name)
        return item

    def resume(self) -> None:
        assert self._session is not None
        self._session.resume()

    def stop(self) -> None:
        if self._session is not None:
            self._session.stop()
        if collective.is_group_initialized("default"):
            collective.destroy_collective_group("default")


def _call(fn: Any) -> Any:
    """Call a training loop that takes no config (Ray allows both forms)."""
    import inspect

    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return fn({})
    return fn() if not params else fn({})


#: the actor: ``next`` waits while ``resume``/``stop`` must get through
TrainWorkerActor = ember.remote(num_cpus=0, max_concurrency=4)(TrainWorker)
