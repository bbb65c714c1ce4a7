"""The actor that hosts one trial: runs its trainable and hands out one result per call."""

from __future__ import annotations

import contextlib
import datetime
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

from ember.air.checkpoint import Checkpoint
from ember.air.session import Report, Session, SessionStopped, TrialInfo, bind
from ember.tune.trainable import Trainable, is_class_trainable

#: train()'s answer once a function trainable returned.
FINISHED = "__trial_finished__"


class TrialRunner:
    """Runs a function or class trainable inside an actor; ``train()`` = next result.

    ``prior`` carries the totals of earlier runs of the same trial (restart after
    a failure or a pause), so training_iteration and time_total_s keep counting.
    """

    def __init__(
        self,
        trainable: Any,
        config: dict[str, Any],
        info: TrialInfo,
        checkpoint_path: str | None,
        prior: dict[str, Any],
    ) -> None:
        os.makedirs(info.dir, mode=0o700, exist_ok=True)
        self.config = config
        self.info = info
        self.iteration = int(prior.get("training_iteration", 0))
        self.time_total = float(prior.get("time_total_s", 0.0))
        self.next_index = int(prior.get("next_checkpoint_index", 0))
        self.since_restore = 0
        self.restore_time = 0.0
        self.experiment_tag = str(prior.get("experiment_tag", ""))
        self._last = time.time()
        checkpoint = Checkpoint(checkpoint_path) if checkpoint_path else None
        self._instance: Trainable | None = None
        self._session: Session | None = None
        self._thread: threading.Thread | None = None
        self._finished = False
        if is_class_trainable(trainable):
            self._instance = self._make_instance(trainable, checkpoint)
        else:
            self._session = Session(info, checkpoint, self.next_index)
            self._thread = threading.Thread(
                target=self._run_function, args=(trainable,), daemon=True
            )
            self._thread.start()

    def _make_instance(self, cls: type[Trainable], checkpoint: Checkpoint | None) -> Trainable:  # fmt: skip
        self._class_session = Session(self.info, checkpoint, self.next_index)
        with self._bound():
            return self._construct(cls, checkpoint)

    @contextlib.contextmanager
    def _bound(self) -> Iterator[None]:
        """The class trainable's session, bound to this thread for one call only."""
        bind(self._class_session)
        try:
            yield
        finally:
            bind(None)

    def _construct(self, cls: type[Trainable], checkpoint: Checkpoint | None) -> Trainable:  # fmt: skip
        instance = cls.__new__(cls)
        instance.trial_name = self.info.name
        instance.trial_id = self.info.id
        instance.logdir = self.info.dir
        Trainable.__init__(instance, self.config)
        instance.training_iteration = self.iteration
        if checkpoint is not None:
            saved = os.path.join(checkpoint.path, "_trainable_state.pkl")
            if os.path.exists(saved):
                import cloudpickle

                with open(saved, "rb") as f:
                    instance.load_checkpoint(cloudpickle.load(f))
            else:
                instance.load_checkpoint(checkpoint.path)
        return instance

    def _run_function(self, fn: Any) -> None:
        session = self._session
        assert session is not None
        bind(session)
        try:
            returned = fn(self.config)
            if isinstance(returned, dict):
                session.report(returned, None)  # a returned dict is the final result
        except SessionStopped:
            return
        except BaseException as exc:  # noqa: BLE001  handed to the driver as the trial's error
            session.reports.put(exc)
            return
        session.reports.put(None)

    def pid(self) -> int:
        return os.getpid()

    def train(self) -> dict[str, Any] | str:
        """The next result (auto fields filled), or FINISHED; raises the trial's error."""
        if self._instance is not None:
            return self._step_class()
        session = self._session
        assert session is not None
        if self._finished:
            return FINISHED
        if self.since_restore > 0:
            session.resume()
        item = session.reports.get()
        if item is None:
            self._finished = True
            return FINISHED
        if isinstance(item, BaseException):
            raise item
        return self._fill(item)

    def _step_class(self) -> dict[str, Any]:
        instance = self._instance
        assert instance is not None
        with self._bound():
            metrics = instance.step()
        if not isinstance(metrics, dict):
            raise TypeError(f"step() must return a dict, got {type(metrics).__name__}")
        instance.training_iteration += 1
        return self._fill(Report(metrics, None))

    def _fill(self, report: Report) -> dict[str, Any]:
        now = time.time()
        this_iter = now - self._last
        self._last = now
        self.iteration += 1
        self.since_restore += 1
        self.time_total += this_iter
        self.restore_time += this_iter
        result = dict(report.metrics)
        if report.checkpoint_dir_name is not None:
            result["checkpoint_dir_name"] = report.checkpoint_dir_name
            result["should_checkpoint"] = True
        result.setdefault("done", False)
        result.setdefault("training_iteration", self.iteration)
        result.update(
            timestamp=int(now),
            trial_id=self.info.id,
            date=datetime.datetime.now().strftime("%Y-%m-%d_%H-%M-%S"),
            time_this_iter_s=this_iter,
            time_total_s=self.time_total,
            pid=os.getpid(),
            hostname=socket.gethostname(),
            node_ip=_node_ip(),
            config=self.config,
            time_since_restore=self.restore_time,
            iterations_since_restore=self.since_restore,
        )
        return result

    def save(self) -> str | None:
        """Save a class trainable's checkpoint into the trial dir; its dir name."""
        instance = self._instance
        if instance is None:
            return None
        index = self.next_index
        self.next_index += 1
        name = f"checkpoint_{index:06d}"
        path = os.path.join(self.info.dir, name)
        os.makedirs(path, exist_ok=True)
        saved = instance.save_checkpoint(path)
        if isinstance(saved, dict):
            import cloudpickle

            with open(os.path.join(path, "_trainable_state.pkl"), "wb") as f:
                cloudpickle.dump(saved, f)
        return name

    def stop(self) -> None:
        """End the trial: unwind the function thread, or run the class's cleanup()."""
        if self._instance is not None:
            self._instance.cleanup()
        elif self._session is not None:
            self._session.stop()


def _node_ip() -> str:
    try:
        import ember

        return str(ember.util.get_node_ip_address())
    except Exception:  # noqa: BLE001  # pragma: no cover - the address is informational
        return socket.gethostbyname(socket.gethostname())
