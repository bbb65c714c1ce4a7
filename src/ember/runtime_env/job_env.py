"""A submitted job's runtime_env reaching its driver: ``EMBER_JOB_CONFIG_JSON``.

The job server starts a job's entrypoint with ``EMBER_JOB_CONFIG_JSON`` set
to ``{"runtime_env": ..., "metadata": ...}`` (its working_dir and py_modules
already package URIs). ``ember.init()`` in that entrypoint lays the
runtime_env passed to it over this one (:func:`with_job_env`), as Ray's
``init()`` does with ``RAY_JOB_CONFIG_JSON_ENV_VAR``: both may not set the
same field or the same environment variable, unless
``EMBER_OVERRIDE_JOB_RUNTIME_ENV=1`` (or Ray's ``RAY_OVERRIDE_JOB_RUNTIME_ENV``)
says the driver's own wins.
"""

from __future__ import annotations

import json
import os
from typing import Any

JOB_CONFIG_ENV = "EMBER_JOB_CONFIG_JSON"
_OVERRIDE = ("EMBER_OVERRIDE_JOB_RUNTIME_ENV", "RAY_OVERRIDE_JOB_RUNTIME_ENV")


def injected_env() -> dict[str, Any] | None:
    """The runtime_env the job server gave this driver, None outside a job."""
    raw = os.environ.get(JOB_CONFIG_ENV)
    if not raw:
        return None
    try:
        config = json.loads(raw)
    except ValueError as exc:
        raise ValueError(f"{JOB_CONFIG_ENV} is not JSON: {exc}") from exc
    env = config.get("runtime_env") if isinstance(config, dict) else None
    return dict(env) if isinstance(env, dict) else {}


def with_job_env(runtime_env: dict[str, Any] | None) -> dict[str, Any] | None:
    """``runtime_env`` (init()'s) laid over the submitted job's, if any."""
    job = injected_env()
    if not job:
        return runtime_env
    own = dict(runtime_env or {})
    override = any(os.environ.get(v) == "1" for v in _OVERRIDE)
    job_vars = dict(job.pop("env_vars", None) or {})
    own_vars = dict(own.pop("env_vars", None) or {})
    clash = sorted(set(job) & set(own)) + sorted(set(job_vars) & set(own_vars))
    if clash and not override:
        raise ValueError(
            f"Failed to merge the job's runtime env {job} with the runtime env "
            f"given to ember.init() {own}: both set {clash}. Set the same fields "
            "or environment variables in one place only, or set "
            "EMBER_OVERRIDE_JOB_RUNTIME_ENV=1 to let ember.init()'s win."
        )
    merged = {**job, **own}
    env_vars = {**job_vars, **own_vars}
    if env_vars:
        merged["env_vars"] = env_vars
    return merged
