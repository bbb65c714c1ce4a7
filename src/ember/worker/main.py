"""Worker process entry: build the core worker and the executor, then serve."""

from __future__ import annotations

import asyncio
import logging
import os
import sys

from ember.common import gc_tuning
from ember.common.config import Config
from ember.common.process import setup_daemon_logging, token_from_env
from ember.protocol.messages import RegisterWorkerRequest
from ember.runtime.core_worker import CoreWorker
from ember.runtime_env import worker_env
from ember.worker import log_stream, proctitle
from ember.worker.executor import Executor

logger = logging.getLogger(__name__)


def run(
    node_unix: str,
    node_id: bytes,
    store_path: str,
    store_bytes: int,
    node_ip: str,
    control: str,
) -> None:
    """Serve tasks until told to exit or until the node daemon goes away."""
    worker_env.apply()  # the runtime env's working_dir and py_modules, if any
    setup_daemon_logging("worker", logging.WARNING)
    gc_tuning.tune()
    if os.environ.get("PYTHONBREAKPOINT") != "0":  # "0" turns breakpoint() off
        # breakpoint() in a task waits for `ember debug`, as Ray's does for `ray debug`
        os.environ["PYTHONBREAKPOINT"] = "ember.util.pdb.set_trace"
    session_dir = os.path.dirname(os.path.dirname(node_unix))
    cw = CoreWorker(
        is_driver=False,
        token=token_from_env(),
        node_unix=node_unix,
        control_address=control,
        session_dir=session_dir,
        node_ip=node_ip,
        config=Config.from_env(),
    )
    cw.node_id = node_id
    executor = Executor(cw)
    try:
        cw.start(store_path, store_bytes)
    except Exception:
        logger.exception("worker failed to start")
        os._exit(1)
    cw.node_conn.on_close(lambda c: os._exit(0 if cw.shutting_down else 1))
    cw.run(
        cw.node_conn.call(
            "node.register_worker",
            RegisterWorkerRequest(
                worker_id=cw.worker_id, pid=os.getpid(), address=cw.address
            ),
        )
    )
    log_stream.install(cw, executor.job_drivers)
    proctitle.idle()
    executor.main_loop()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
        cw.run(_flush_replies(cw), timeout=2)
    except (TimeoutError, RuntimeError):
        pass
    finally:
        cw.shutting_down = True
        os._exit(executor.exit_code or 0)


async def _flush_replies(cw: CoreWorker) -> None:
    """Let replies (and the last task events) reach the wire before we exit."""
    cw.task_events.close()
    for _ in range(100):
        await asyncio.sleep(0)
        busy = [c for c in cw.server.connections if c.write_buffer_size() > 0]
        if not busy:
            return
        await asyncio.sleep(0.01)
