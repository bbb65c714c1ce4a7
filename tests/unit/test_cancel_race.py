"""Cancelling a running task interrupts that task and no other.

``worker.cancel_task`` arrives on the loop thread while the main thread runs
tasks; the interrupt (SIGINT to the main thread) is delivered later. These
tests run a real ``Executor`` on pytest's main thread, play the loop thread
from a helper thread, and force the interleavings with events and a hook on
``signal.pthread_kill``: no sleeps.
"""

from __future__ import annotations

import pickle
import signal
import threading
import types
from collections.abc import Callable
from typing import Any

import pytest

from ember import exceptions as exc_mod
from ember.common.config import Config
from ember.protocol.messages import Address, CancelTaskRequest, TaskSpec
from ember.runtime.serialization import deserialize
from ember.worker.executor import Executor

JOB = b"\x01\x00\x00\x00"
STEP_S = 10.0


class FakeLoopThread:
    def call(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)

    def in_loop_thread(self) -> bool:
        return False


class FakeCoreWorker:
    """What the executor uses of a core worker, for tasks without ref arguments."""

    def __init__(self) -> None:
        self.handlers: dict[str, Any] = {}
        self.loop_thread = FakeLoopThread()
        self.config = Config()
        self.escrow: dict[bytes, list[Any]] = {}
        self.address = Address(
            worker_id=b"w" * 16, node_id=b"n" * 16, tcp="tcp:127.0.0.9:1"
        )
        self.node_id = b"n" * 16
        self.node_ip = "127.0.0.9"
        self.namespace = ""
        self.job_id = b""
        self.links = types.SimpleNamespace(job_id=b"")
        self.borrowing = types.SimpleNamespace(registrations_in_flight=list)


class FakeConn:
    """A connection whose replies are written "from the thread" into a dict."""

    def __init__(self) -> None:
        self.current_req_id = 0
        self.replies: dict[int, Any] = {}
        self.cond = threading.Condition()

    def enable_thread_writes(self) -> bool:
        return True

    def reply_from_thread(self, req_id: int, result: Any) -> None:
        with self.cond:
            self.replies[req_id] = result
            self.cond.notify_all()

    def wait_reply(self, req_id: int) -> Any:
        with self.cond:
            assert self.cond.wait_for(lambda: req_id in self.replies, STEP_S)
            return self.replies[req_id]


def wait_interruptibly(event: threading.Event, timeout_s: float) -> bool:
    """``event.wait`` in short steps, so a signal handler runs promptly.

    A SIGINT that arrives just before the main thread blocks in a lock does
    not wake it (CPython runs the handler once the wait returns); short
    waits bound that delay.
    """
    for _ in range(int(timeout_s / 0.01)):
        if event.wait(0.01):
            return True
    return event.is_set()


def outcome(result: Any) -> Any:
    """The task's value, or the exception it stored."""
    reply, frames = result
    (ret,) = reply.returns
    if ret.is_error:
        err = pickle.loads(frames[0])
        # what ``get`` raises: ``except TaskCancelledError`` must catch it
        return err.as_instanceof_cause() if isinstance(err, exc_mod.TaskError) else err
    return deserialize(frames[0], list(frames[1 : ret.nbufs]))


class Harness:
    def __init__(self) -> None:
        self.cw = FakeCoreWorker()
        self.ex = Executor(self.cw)  # type: ignore[arg-type]
        self.table = getattr(self.ex, "table", self.ex)  # the function table
        self.table.jobs_loaded.add(JOB)
        self.conn = FakeConn()
        self.n = 0

    def push(self, fn: Callable[[], Any]) -> tuple[int, bytes]:
        """Queue ``fn`` as a normal task; its request id and task id."""
        self.n += 1
        key = self.n.to_bytes(16, "big")
        self.table.functions[key] = fn
        task_id = b"T" * 15 + bytes([self.n])
        spec = TaskSpec(
            task_id=task_id,
            job_id=JOB,
            name=f"task{self.n}",
            function_key=key,
            args=pickle.dumps(((), {})),
        )
        self.conn.current_req_id = self.n
        self.cw.handlers["worker.push_task"](self.conn, spec, [])
        return self.n, task_id

    def cancel(self, task_id: bytes) -> None:
        req = CancelTaskRequest(task_id=task_id)
        self.cw.handlers["worker.cancel_task"](self.conn, req, [])

    def run_main_loop(self, driver: Callable[[], None]) -> None:
        """Run the executor on this (the main) thread while ``driver`` runs beside it."""
        errors: list[BaseException] = []

        def drive() -> None:
            try:
                driver()
            except BaseException as exc:
                errors.append(exc)
            finally:
                self.ex.main_q.put(None)

        t = threading.Thread(target=drive)
        t.start()
        try:
            self.ex.main_loop()
        finally:
            t.join(STEP_S)
        assert not t.is_alive()
        if errors:
            raise errors[0]


@pytest.fixture
def harness() -> Harness:
    assert threading.current_thread() is threading.main_thread()
    return Harness()


def test_cancel_of_finished_task_does_not_interrupt_the_next(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cancel finds A running, but its interrupt lands while B runs."""
    a_running, a_release = threading.Event(), threading.Event()
    b_running, b_release = threading.Event(), threading.Event()
    b_done = threading.Event()
    real_kill = signal.pthread_kill
    kills: list[int] = []

    def a() -> str:
        a_running.set()
        assert a_release.wait(STEP_S)
        return "A"

    def b() -> str:
        b_running.set()
        try:
            assert wait_interruptibly(b_release, STEP_S)
        finally:
            b_done.set()
        return "B"

    def late_kill(ident: int, signum: int) -> None:
        # The worker decided to interrupt A; before the signal is sent, A
        # finishes and B starts on the main thread.
        a_release.set()
        assert b_running.wait(STEP_S)
        kills.append(signum)
        real_kill(ident, signum)

    def driver() -> None:
        req_a, task_a = harness.push(a)
        req_b, _ = harness.push(b)
        assert a_running.wait(STEP_S)
        monkeypatch.setattr(signal, "pthread_kill", late_kill)
        harness.cancel(task_a)
        monkeypatch.setattr(signal, "pthread_kill", real_kill)
        if kills:
            # Wait until the interrupt was handled: B saw it, or the executor
            # dropped it as stale.
            interrupts = getattr(harness.ex, "interrupts", None)
            poll = threading.Event()
            for _ in range(int(STEP_S / 0.01)):
                if b_done.is_set() or getattr(interrupts, "stale", 0) >= 1:
                    break
                poll.wait(0.01)  # polling a condition, with a deadline
        b_release.set()
        assert outcome(harness.conn.wait_reply(req_a)) == "A"
        assert outcome(harness.conn.wait_reply(req_b)) == "B"
        # The worker still runs tasks.
        req_c, _ = harness.push(lambda: "C")
        assert outcome(harness.conn.wait_reply(req_c)) == "C"

    harness.run_main_loop(driver)


def test_cancel_of_running_task_raises_task_cancelled(harness: Harness) -> None:
    a_running = threading.Event()
    never = threading.Event()

    def a() -> None:
        a_running.set()
        never.wait(STEP_S * 3)  # one long lock wait: the interrupt must wake it

    def driver() -> None:
        req_a, task_a = harness.push(a)
        req_b, _ = harness.push(lambda: "B")
        assert a_running.wait(STEP_S)
        harness.cancel(task_a)
        err = outcome(harness.conn.wait_reply(req_a))
        assert isinstance(err, exc_mod.TaskCancelledError)
        assert outcome(harness.conn.wait_reply(req_b)) == "B"

    harness.run_main_loop(driver)


def test_cancel_before_start_and_after_finish(harness: Harness) -> None:
    """A queued task that was cancelled never runs; a finished one is unaffected."""
    a_running, a_release = threading.Event(), threading.Event()
    ran: list[str] = []

    def a() -> str:
        a_running.set()
        assert a_release.wait(STEP_S)
        return "A"

    def b() -> str:
        ran.append("B")
        return "B"

    def driver() -> None:
        req_a, task_a = harness.push(a)
        req_b, task_b = harness.push(b)
        assert a_running.wait(STEP_S)
        harness.cancel(task_b)  # still queued
        a_release.set()
        assert outcome(harness.conn.wait_reply(req_a)) == "A"
        assert isinstance(
            outcome(harness.conn.wait_reply(req_b)), exc_mod.TaskCancelledError
        )
        assert ran == []
        harness.cancel(task_a)  # already finished: nothing happens
        req_c, _ = harness.push(lambda: "C")
        assert outcome(harness.conn.wait_reply(req_c)) == "C"

    harness.run_main_loop(driver)
