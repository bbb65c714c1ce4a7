"""How the node daemon starts worker processes: through the fork server, or exec.

Both launchers return ``(pid, exited)``: the worker's pid and a future of its
exit code.  The fork server (``python -m ember.worker.forkserver``) forks
pre-imported workers in milliseconds; plain exec is the fallback when it
cannot start.

The fork server is connected to the daemon by a socketpair whose other end
it inherits (``--fd``): it listens nowhere, so no other process can ask it
to fork.  It does not get the cluster token in its own environment (each
worker's environment travels in its spawn request).  Worker logs are opened
0600 (:func:`ember.common.private_files.open_private_log`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import socket
import sys
from typing import Any, Protocol

from ember.common.private_files import open_private_log
from ember.common.process import TOKEN_ENV
from ember.common.process_tree import kill_session

logger = logging.getLogger(__name__)


class Launcher(Protocol):
    async def launch(
        self, argv: list[str], env: dict[str, str], log: str
    ) -> tuple[int, asyncio.Future[int]]: ...

    async def close(self) -> None: ...


class ExecLauncher:
    """A new interpreter per worker (``python -m ember.worker``).

    ``python``: the interpreter (default: the daemon's own); a runtime env's
    virtualenv gives its own, which the fork server cannot fork.
    """

    def __init__(self, python: str = "") -> None:
        self.python = python or sys.executable

    async def launch(
        self, argv: list[str], env: dict[str, str], log: str
    ) -> tuple[int, asyncio.Future[int]]:
        out = open_private_log(log)
        try:
            proc = await asyncio.create_subprocess_exec(
                self.python,
                "-m",
                "ember.worker",
                *argv,
                env=env,
                stdout=out,
                stderr=out,
                stdin=asyncio.subprocess.DEVNULL,
                start_new_session=True,  # its session: what its tasks spawn
            )
        finally:
            os.close(out)
        exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        async def wait() -> None:
            code = await proc.wait()
            # After the reap (asyncio's child watcher reaps): safe while any
            # member of the session still holds its id, which is the case
            # that matters (common/process_tree.py).
            kill_session(proc.pid)
            if not exited.done():
                exited.set_result(code)

        self._tasks: set[asyncio.Task[Any]] = getattr(self, "_tasks", set())
        t = asyncio.get_running_loop().create_task(wait())
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)
        return proc.pid, exited

    async def close(self) -> None:
        pass


class ForkServerLauncher:
    """Workers forked by the fork server process."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pending: list[asyncio.Future[int]] = []
        self._exits: dict[int, asyncio.Future[int]] = {}
        self._early: dict[int, int] = {}
        #: forked for a launch that was cancelled meanwhile (the daemon is stopping)
        self._abandoned: set[int] = set()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task[None] | None = None

    async def start(self, env: dict[str, str], log: str) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        env = {k: v for k, v in env.items() if k != TOKEN_ENV}
        out = open_private_log(log)
        try:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "ember.worker.forkserver",
                "--fd",
                str(theirs.fileno()),
                env=env,
                stdout=out,
                stderr=out,
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            os.close(out)
            theirs.close()
        self._reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        line = await asyncio.wait_for(self._reader.readline(), 30)
        if json.loads(line or b"{}").get("ready") is not True:
            raise RuntimeError("the fork server did not start")
        self._task = asyncio.get_running_loop().create_task(self._read_loop())

    async def _read_loop(self) -> None:
        assert self._reader is not None
        while True:
            line = await self._reader.readline()
            if not line:
                break
            msg = json.loads(line)
            if "pid" in msg:
                started = self._pending.pop(0)
                if started.done():
                    # Its launch was cancelled (the daemon stops): nobody will
                    # track this worker, so end it now. (Setting the result of a
                    # cancelled future used to raise here and end this loop:
                    # exits went unreported and the daemon's stop waited 5 s.)
                    self._abandoned.add(msg["pid"])
                    _kill(msg["pid"])
                else:
                    started.set_result(msg["pid"])
            elif self._abandoned and msg["exited"] in self._abandoned:
                self._abandoned.discard(msg["exited"])
            else:
                fut = self._exits.pop(msg["exited"], None)
                if fut is None:
                    self._early[msg["exited"]] = msg["code"]
                elif not fut.done():
                    fut.set_result(msg["code"])
        err = RuntimeError("the fork server exited")
        for f in self._pending:
            if not f.done():
                f.set_exception(err)
        # Children outlive the fork server; nobody can report their exits now.
        for pid, fut in list(self._exits.items()):
            self._sup_watch(pid, fut)

    def _sup_watch(self, pid: int, fut: asyncio.Future[int]) -> None:
        loop = asyncio.get_running_loop()
        try:
            pidfd = os.pidfd_open(pid)
        except (OSError, AttributeError):
            fut.set_result(-1)
            return

        def gone() -> None:
            loop.remove_reader(pidfd)
            os.close(pidfd)
            if not fut.done():
                fut.set_result(-1)

        loop.add_reader(pidfd, gone)

    async def launch(
        self, argv: list[str], env: dict[str, str], log: str
    ) -> tuple[int, asyncio.Future[int]]:
        assert self._writer is not None
        loop = asyncio.get_running_loop()
        async with self._lock:
            fut: asyncio.Future[int] = loop.create_future()
            self._pending.append(fut)
            self._writer.write(
                json.dumps({"argv": argv, "env": env, "log": log}).encode() + b"\n"
            )
            pid = await fut
        exited: asyncio.Future[int] = loop.create_future()
        if pid in self._early:
            exited.set_result(self._early.pop(pid))
        else:
            self._exits[pid] = exited
        return pid, exited

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        if self.proc is not None and self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(self.proc.wait(), 5)
            except (ProcessLookupError, TimeoutError):
                self.proc.kill()
        if self._task is not None:
            self._task.cancel()


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


class DeferredLauncher:
    """Starts the fork server in the background; falls back to exec if it fails.

    Launch requests made before the fork server is ready wait for it, so the
    node daemon can register with the control service meanwhile.
    """

    def __init__(self, env: dict[str, str], log: str) -> None:
        self._ready: asyncio.Future[Launcher] = (
            asyncio.get_running_loop().create_future()
        )
        self._fs = ForkServerLauncher()
        self._task = asyncio.get_running_loop().create_task(self._start(env, log))

    async def _start(self, env: dict[str, str], log: str) -> None:
        fs = self._fs = ForkServerLauncher()
        try:
            await fs.start(env, log)
        except Exception as exc:  # noqa: BLE001  (any failure means: use exec)
            logger.warning(
                "fork server unavailable (%s); starting workers with exec", exc
            )
            await fs.close()
            self._ready.set_result(ExecLauncher())
            return
        self._ready.set_result(fs)

    async def launch(
        self, argv: list[str], env: dict[str, str], log: str
    ) -> tuple[int, asyncio.Future[int]]:
        launcher = await asyncio.shield(self._ready)
        return await launcher.launch(argv, env, log)

    async def close(self) -> None:
        if self._ready.done():
            await self._ready.result().close()
        else:
            self._task.cancel()
            await self._fs.close()  # it may have started without being connected yet
