"""Options ember accepts (for Ray compatibility) but does not act on yet: warn, by name.

A Ray program may pass ``enable_resource_isolation=True`` or
``runtime_env={"conda": ...}``; ember must not fail on them, but silently
ignoring them hides why a program behaves differently. Each such option warns
once per process (``UserWarning``), naming the option and what is missing.
When an option's issue lands, it leaves these tables.
"""

from __future__ import annotations

import warnings
from typing import Any

from ember.runtime_env import runtime_env as renv

#: init() keyword -> what ember lacks
INIT_OPTIONS = {
    "job_config": "job configs are not supported",
    "storage": "there is no cluster storage",
    "_enable_object_reconstruction": "lost objects are not reconstructed",
    "_plasma_directory": "the object store lives in /dev/shm or the session folder",
    "enable_resource_isolation": "there is no resource isolation",
    "_node_ip_address": "the node address is chosen by ember",
}

#: runtime_env fields ember applies; every other (known) field warns
RUNTIME_ENV_APPLIED = renv.APPLIED
#: fields that act only in ``init(runtime_env=...)`` (api/setup_hook.py takes them
#: out there): in a task's or actor's runtime_env they warn, with this reason
JOB_ONLY_FIELDS = {
    "worker_process_setup_hook": "it is a job setting: pass it to "
    "init(runtime_env=...), where it runs in every worker process of the job",
}

_warned: set[str] = set()


def warn_ignored(option: str, why: str) -> None:
    """Warn (once per process) that ``option`` has no effect in ember yet."""
    if option in _warned:
        return
    _warned.add(option)
    warnings.warn(
        f"ember does not act on {option} yet ({why}); it is ignored.",
        UserWarning,
        stacklevel=4,
    )


def check_init(given: dict[str, Any]) -> None:
    """``given``: the init() options the caller set to something other than the default."""
    for name, value in given.items():
        if name in INIT_OPTIONS and value is not None:
            warn_ignored(f"init({name}=...)", INIT_OPTIONS[name])


def check_runtime_env(value: Any, where: str) -> None:
    """Warn about each field of a (validated) runtime_env dict that is not applied."""
    if not isinstance(value, dict):
        return
    for field in value:
        if field in JOB_ONLY_FIELDS:
            warn_ignored(f"{where}[{field!r}]", JOB_ONLY_FIELDS[field])
        elif field not in RUNTIME_ENV_APPLIED:
            known = field in renv.KNOWN_FIELDS
            warn_ignored(
                f"{where}[{field!r}]",
                ("" if known else "it is no runtime_env field ember knows; ")
                + "ember's runtime environments set up working_dir, py_modules, "
                "pip, uv, py_executable and env_vars only",
            )
