"""Checks of public API arguments, and the limits on unbounded inputs.

Every public function checks its arguments in the caller's process before
anything is sent, so a bad value raises a typed error at the call site (a
``TypeError`` for a wrong type, a ``ValueError`` for a bad value, each naming
the argument) and never reaches a daemon: a request a daemon cannot decode
closes that connection, and with it every later call of the driver.

Limits (Ray has none of these; they keep one call from eating the machine or
the wire, and are far above any real use):

============================  ==========================================
``num_returns``               at most ``MAX_NUM_RETURNS`` (100,000)
a resource amount             finite, 0 to ``MAX_RESOURCE_AMOUNT`` (1e15)
a name (actor, namespace,     at most ``MAX_NAME_LENGTH`` (1,024) characters
placement group, task,
resource, env var key)
retries, restarts, pending    at most ``MAX_COUNT`` (2**31 - 1); -1 = forever
calls
``max_concurrency``           at most ``MAX_CONCURRENCY`` (100,000)
env vars of a runtime_env     ``KEY=value`` at most ``MAX_ENV_VAR_BYTES``
                              (128 KiB, Linux's limit for one exec string),
                              all at most ``MAX_ENV_TOTAL_BYTES`` (1 MiB)
bundles of a placement group  at most ``MAX_BUNDLES`` (10,000)
============================  ==========================================
"""

from __future__ import annotations

import math
from typing import Any

from ember.api import ignored_options
from ember.common.node_labels import node_labels_error
from ember.runtime_env import runtime_env as renv

MAX_NUM_RETURNS = 100_000
MAX_RESOURCE_AMOUNT = 1e15
MAX_NAME_LENGTH = 1024
MAX_COUNT = 2**31 - 1
MAX_CONCURRENCY = 100_000
MAX_ENV_VAR_BYTES = 128 * 1024 - 1
MAX_ENV_TOTAL_BYTES = 1024 * 1024
MAX_BUNDLES = 10_000


def check_bool(where: str, value: Any) -> None:
    """``where`` names the argument, e.g. ``"kill() 'no_restart'"``."""
    if not isinstance(value, bool):
        raise TypeError(
            f"{where} must be a bool (True or False), got "
            f"{type(value).__name__}: {value!r}"
        )


def check_name(
    where: str, value: Any, *, optional: bool = False, allow_empty: bool = True
) -> None:
    """A str of at most MAX_NAME_LENGTH characters (or None if ``optional``)."""
    if value is None and optional:
        return
    if not isinstance(value, str):
        expected = "None or a str" if optional else "a str"
        raise TypeError(
            f"{where} must be {expected}, got {type(value).__name__}: {value!r}"
        )
    if not allow_empty and not value:
        raise ValueError(f"{where} must not be empty.")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(
            f"{where} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}."
        )


def amount_error(where: str, value: Any) -> str | None:
    """Why ``value`` is not a resource amount (raises TypeError for a non-number)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(
            f"The quantity of resource '{where}' must be an int or float, "
            f"but received {type(value).__name__} ({value!r})."
        )
    if isinstance(value, float) and not math.isfinite(value):
        return (
            f"The quantity of resource '{where}' must be a finite number, got {value}."
        )
    if value < 0:
        return f"The quantity of resource '{where}' cannot be negative (got {value}); pass 0 or more."
    if value > MAX_RESOURCE_AMOUNT:
        return (
            f"The quantity of resource '{where}' is {value}; the limit is "
            f"{MAX_RESOURCE_AMOUNT:g}."
        )
    return None


def check_resource_name(where: str, name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(
            f"Resource names in {where} must be str, but received {name!r}."
        )
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(
            f"Resource names in {where} must have 1 to {MAX_NAME_LENGTH} characters; "
            f"got {len(name)}."
        )


def check_runtime_env(
    value: Any, where: str = "runtime_env", *, job_level: bool = False
) -> None:
    """A dict of Ray's runtime_env fields (``ember.runtime_env.normalize``: Ray's
    errors), whose ``env_vars`` (if any) is a Dict[str, str] that exec accepts.
    ``job_level``: init()'s, where working_dir and py_modules may be local paths."""
    if value is None:
        return
    if not isinstance(value, dict):
        raise TypeError(
            f"The type of keyword '{where}' must be dict or None, but received "
            f"{type(value).__name__} ({value!r})."
        )
    renv.normalize(value, job_level=job_level)
    ignored_options.check_runtime_env(value, where)
    env_vars = value.get("env_vars")
    if env_vars is None:
        return
    label = f"{where}['env_vars']"
    if not isinstance(env_vars, dict):
        raise TypeError(f"{label} must be of type Dict[str, str], got {type(env_vars)}")
    total = 0
    for k, v in env_vars.items():
        if not isinstance(k, str):
            raise TypeError(
                f"{label} must be of type Dict[str, str], but the key {k!r} is of "
                f"type {type(k)}"
            )
        if not isinstance(v, str):
            raise TypeError(
                f"{label} must be of type Dict[str, str], but the value {v!r} is of "
                f"type {type(v)}"
            )
        if not k or "=" in k or "\0" in k or len(k) > MAX_NAME_LENGTH:
            raise ValueError(
                f"{label} has an invalid variable name {k[:80]!r}: it must be 1 to "
                f"{MAX_NAME_LENGTH} characters without '=' or NUL."
            )
        if "\0" in v:
            raise ValueError(f"{label}[{k!r}] contains a NUL character.")
        size = len(k.encode()) + 1 + len(v.encode())
        if size > MAX_ENV_VAR_BYTES:
            raise ValueError(
                f"{label}[{k!r}] is {size} bytes as KEY=value; the limit is "
                f"{MAX_ENV_VAR_BYTES} (one exec string)."
            )
        total += size + 1
    if total > MAX_ENV_TOTAL_BYTES:
        raise ValueError(
            f"{label} holds {total} bytes; the limit is {MAX_ENV_TOTAL_BYTES}."
        )


def check_timeout(where: str, value: Any, error: type[Exception] = TypeError) -> None:
    """None or a non-negative number (a wrong type raises ``error``, as Ray's do)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise error(
            f"{where} must be a non-negative number or None, got "
            f"{type(value).__name__}: {value!r}"
        )
    if math.isnan(value) or value < 0:
        raise ValueError(f"{where} must be >= 0 or None, got {value}")


def check_init_args(
    address: Any,
    num_cpus: Any,
    num_gpus: Any,
    resources: Any,
    labels: Any,
    object_store_memory: Any,
    namespace: Any,
    runtime_env: Any,
    flags: dict[str, Any],
) -> None:
    """The arguments of ``init()`` (``flags``: its bool arguments by name)."""
    check_name("init() 'address'", address, optional=True)
    for name, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(
                f"init() '{name}' must be an int, got {type(value).__name__}: {value!r}"
            )
        if not 0 <= value <= MAX_CONCURRENCY:
            raise ValueError(
                f"init() '{name}' must be 0 to {MAX_CONCURRENCY}, got {value}"
            )
    if object_store_memory is not None:
        if isinstance(object_store_memory, bool) or not isinstance(
            object_store_memory, int
        ):
            raise TypeError(
                "init() 'object_store_memory' must be an int (bytes), got "
                f"{type(object_store_memory).__name__}"
            )
        if not 0 < object_store_memory <= MAX_RESOURCE_AMOUNT:
            raise ValueError(
                "init() 'object_store_memory' must be a positive number of bytes, "
                f"got {object_store_memory}"
            )
    if resources is not None:
        if not isinstance(resources, dict):
            raise TypeError(
                f"init() 'resources' must be a dict, got {type(resources).__name__}"
            )
        for k, v in resources.items():
            check_resource_name("init() 'resources'", k)
            if message := amount_error(k, v):
                raise ValueError(message)
    if labels is not None and not (
        isinstance(labels, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items())
    ):
        raise TypeError("init() 'labels' must be a dict of str to str")
    if labels and (why := node_labels_error(labels)):
        raise ValueError(f"init() 'labels': {why}")
    check_name("init() 'namespace'", namespace, optional=True)
    if namespace == "":
        raise ValueError('"" is not a valid namespace. Pass None for a fresh one.')
    check_runtime_env(runtime_env, job_level=True)
    for name, value in flags.items():
        check_bool(f"init() '{name}'", value)
