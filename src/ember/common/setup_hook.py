"""How a job's ``worker_process_setup_hook`` travels to its workers: one env var.

The driver's ``init(runtime_env={"worker_process_setup_hook": ...})`` puts
:data:`ENV_VAR` into the job's ``env_vars``, so every task and actor of the
job carries it, its workers are started with it (workers are pooled by their
environment) and a worker without it never runs the job's tasks. Its value is
either a dotted ``module.function`` path, imported in the worker, or
:data:`KEY_PREFIX` plus the hex digest under which the driver exported a
callable into the function table (KV namespace ``fn``).
"""

from __future__ import annotations

ENV_VAR = "EMBER_WORKER_PROCESS_SETUP_HOOK"
KEY_PREFIX = "ember-fn:"


def encode_key(key: bytes) -> str:
    """The env value naming an exported callable."""
    return KEY_PREFIX + key.hex()


def decode(value: str) -> tuple[bytes | None, str]:
    """``(function table key, "")`` for an exported callable, ``(None, path)`` else."""
    if value.startswith(KEY_PREFIX):
        return bytes.fromhex(value[len(KEY_PREFIX) :]), ""
    return None, value
