"""``RuntimeEnv``: a checked runtime environment, its merge rule and its content hash.

A runtime env is a dict (or this dict subclass) of Ray's fields. ember acts on
``working_dir``, ``py_modules``, ``excludes``, ``pip``, ``uv``,
``py_executable``, ``env_vars``, ``config`` and (in ``init()``)
``worker_process_setup_hook``. Ray's other known fields (``conda``,
``container``, ``image_uri``, ``java_jars``, ``_nsight``, ...) are accepted and
warned about by the API (``api/ignored_options.py``). Any other key is kept
as it is, as Ray keeps it (for a runtime-env plugin: Ray 2.60 runs the task
and ignores it), and the API warns that ember does nothing with it.

Merging (as Ray's): a task's or actor's env is laid over the job's (or the
submitting task's) field by field; ``env_vars`` are merged per variable.

:func:`content_hash` names what must be built on a node (packages, pip/uv,
interpreter): ``config`` and ``env_vars`` are not part of it, so two envs
that differ only there share one built environment.
"""

from __future__ import annotations

import hashlib
import json
from copy import deepcopy
from typing import Any

from ember.runtime_env import fields
from ember.runtime_env.config import DEFAULT_SETUP_TIMEOUT_S, RuntimeEnvConfig

#: fields ember sets up
APPLIED = frozenset(
    {
        "working_dir",
        "py_modules",
        "excludes",
        "pip",
        "uv",
        "py_executable",
        "env_vars",
        "config",
        "worker_process_setup_hook",
    }
)
#: Ray's other fields: accepted, not acted on (the API warns)
NOT_APPLIED = frozenset(
    {
        "conda",
        "container",
        "image_uri",
        "java_jars",
        "_nsight",
        "_rocprof_sys",
        "_ray_release",
        "_ray_commit",
        "_inject_current_ray",
    }
)
KNOWN_FIELDS = APPLIED | NOT_APPLIED
#: the fields that decide what a node builds (the content hash covers these)
BUILT_FIELDS = ("working_dir", "py_modules", "pip", "uv", "py_executable")


class RuntimeEnv(dict[str, Any]):
    """A runtime environment for a job, task or actor (usable wherever a dict is).

    Args:
        py_modules: local folders, ``.zip``/``.whl`` files or module objects
            (in ``init()``), or package URIs, put on the workers' ``sys.path``.
        py_executable: the interpreter the workers start from.
        working_dir: a local folder or ``.zip`` (in ``init()``) or a package
            URI: copied to every node, the workers' cwd and first on ``sys.path``.
        pip: a list of requirements, a requirements file, or a dict with
            ``packages``, ``pip_check``, ``pip_install_options``, ``pip_version``.
        uv: as ``pip``, installed with uv when it is installed.
        env_vars: environment variables of the workers.
        worker_process_setup_hook: a function (or its dotted path) run once in
            every worker of the job (``init()`` only).
        config: a :class:`RuntimeEnvConfig` or a dict of its fields.
        _validate: check the fields (False trusts them, for deserialising).
    """

    known_fields = KNOWN_FIELDS

    def __init__(
        self,
        *,
        py_modules: list[Any] | None = None,
        py_executable: str | None = None,
        working_dir: str | None = None,
        pip: Any = None,
        conda: Any = None,
        container: Any = None,
        env_vars: dict[str, str] | None = None,
        worker_process_setup_hook: Any = None,
        nsight: Any = None,
        rocprof_sys: Any = None,
        config: Any = None,
        _validate: bool = True,
        image_uri: str | None = None,
        uv: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        given = dict(kwargs)
        named = {
            "py_modules": py_modules,
            "py_executable": py_executable,
            "working_dir": working_dir,
            "pip": pip,
            "uv": uv,
            "conda": conda,
            "_nsight": nsight,
            "_rocprof_sys": rocprof_sys,
            "container": container,
            "env_vars": env_vars,
            "config": config,
            "worker_process_setup_hook": worker_process_setup_hook,
            "image_uri": image_uri,
        }
        given.update({k: v for k, v in named.items() if v is not None})
        if not _validate:
            super().update(given)
            return
        super().update(normalize(given))

    def __setitem__(self, key: str, value: Any) -> None:
        checked = normalize({**self, key: value})
        if key in checked:
            super().__setitem__(key, checked[key])
        else:
            self.pop(key, None)

    # Ray's accessors ------------------------------------------------------------
    def get(self, name: str, default: Any = None, data_class: Any = None) -> Any:
        if name not in self:
            return default
        value = self[name]
        return data_class(**value) if data_class is not None else value

    def set(self, name: str, value: Any) -> None:
        self[name] = value

    def working_dir(self) -> str:
        return str(self.get("working_dir", ""))

    def has_working_dir(self) -> bool:
        return self.get("working_dir") is not None

    def working_dir_uri(self) -> str | None:
        return self.get("working_dir")

    def py_modules(self) -> list[str]:
        return list(self.get("py_modules", []))

    def py_modules_uris(self) -> list[str]:
        return self.py_modules()

    def py_executable(self) -> str | None:
        return self.get("py_executable")

    def env_vars(self) -> dict[str, str]:
        return dict(self.get("env_vars", {}))

    def has_pip(self) -> bool:
        return bool(self.get("pip"))

    def pip_config(self) -> dict[str, Any]:
        return dict(self.get("pip") or {})

    def has_uv(self) -> bool:
        return bool(self.get("uv"))

    def uv_config(self) -> dict[str, Any]:
        return dict(self.get("uv") or {})

    def has_conda(self) -> bool:
        return bool(self.get("conda"))

    def plugin_uris(self) -> list[str]:
        return []

    def to_dict(self) -> dict[str, Any]:
        out = dict(deepcopy(self))
        if isinstance(out.get("config"), RuntimeEnvConfig):
            out["config"] = out["config"].to_dict()
        return out

    def serialize(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, default=str)

    @classmethod
    def deserialize(cls, serialized: str) -> RuntimeEnv:
        return cls(_validate=False, **json.loads(serialized))


def normalize(env: Any, *, job_level: bool = True) -> dict[str, Any]:
    """The checked normal form of a runtime_env dict (Ray's errors on bad input).

    ``job_level``: whether local paths may be given for working_dir and
    py_modules (only ``init()`` uploads them, as in Ray).
    """
    if env is None:
        return {}
    if not isinstance(env, dict):
        raise TypeError(f"runtime_env must be dict or RuntimeEnv, but got: {type(env)}")
    bad_keys = [k for k in env if not isinstance(k, str)]
    if bad_keys:
        raise TypeError(f"runtime_env keys must be str, got {bad_keys[:3]!r}")
    if sum(env.get(k) is not None for k in ("pip", "uv", "conda")) > 1:
        raise ValueError(
            "The 'pip' field, 'uv' field, and 'conda' field of runtime_env cannot "
            "be specified at the same time.\n"
            f"specified pip field: {env.get('pip')}\n"
            f"specified conda field: {env.get('conda')}\n"
            f"specified uv field: {env.get('uv')}"
        )
    for only in ("container", "image_uri"):
        if env.get(only):
            extra = set(env) - {only, "config", "env_vars"}
            if extra:
                raise ValueError(
                    f"The '{only}' field currently cannot be used together with "
                    f"other fields of runtime_env. Specified fields: {extra}"
                )
    out: dict[str, Any] = {}
    for key, value in env.items():
        if value is None:
            continue
        checked = _check_field(key, value, job_level)
        if checked is not None:
            out[key] = checked
    return out


def _check_field(key: str, value: Any, job_level: bool) -> Any:
    if key == "working_dir":
        return fields.parse_working_dir(value, job_level=job_level)
    if key == "py_modules":
        return fields.parse_py_modules(value, job_level=job_level)
    if key == "excludes":
        return fields.parse_excludes(value)
    if key == "pip":
        return fields.parse_pip(value)
    if key == "uv":
        return fields.parse_uv(value)
    if key == "env_vars":
        return fields.parse_env_vars(value)
    if key == "config":
        return RuntimeEnvConfig.parse_and_validate_runtime_env_config(value)
    if key == "py_executable":
        if not isinstance(value, str) or not value:
            raise TypeError(
                f"runtime_env['py_executable'] must be a non-empty str, got {value!r}"
            )
        return value
    return value


def merge(
    parent: dict[str, Any] | None, child: dict[str, Any] | None
) -> dict[str, Any]:
    """``child`` laid over ``parent``: per field, and per variable for env_vars."""
    merged = dict(parent or {})
    parent_vars = dict(merged.pop("env_vars", None) or {})
    child = dict(child or {})
    child_vars = child.pop("env_vars", None) or {}
    merged.update(child)
    parent_vars.update(child_vars)
    if parent_vars:
        merged["env_vars"] = parent_vars
    return merged


def built_part(env: dict[str, Any]) -> dict[str, Any]:
    """The fields a node builds from (what :func:`content_hash` covers)."""
    return {k: env[k] for k in BUILT_FIELDS if env.get(k)}


def content_hash(env: dict[str, Any]) -> str:
    """A hex digest of what a node must build for ``env`` ("" when nothing)."""
    part = built_part(env)
    if not part:
        return ""
    text = json.dumps(part, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def worker_key(env_vars: dict[str, str], env: dict[str, Any]) -> str:
    """The key of the workers that may serve ``env``: its content and env vars.

    ("" for the base env: no env vars, nothing built.) A worker started for
    one key never runs work of another.
    """
    built = content_hash(env)
    if not env_vars and not built:
        return ""
    if not built:
        return repr(sorted(env_vars.items()))
    return f"{built}:{repr(sorted(env_vars.items())) if env_vars else ''}"


def setup_timeout_s(env: dict[str, Any]) -> float | None:
    """The env's ``config.setup_timeout_seconds`` (None: no limit)."""
    config = env.get("config") or {}
    value = config.get("setup_timeout_seconds", DEFAULT_SETUP_TIMEOUT_S)
    return None if value == -1 else float(value)


def for_wire(env: dict[str, Any]) -> dict[str, Any]:
    """What a node needs of a resolved env: the built fields and the config."""
    out = built_part(env)
    if env.get("config"):
        out["config"] = dict(env["config"])
    return out
