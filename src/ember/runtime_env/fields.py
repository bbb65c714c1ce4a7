"""Checks and normal forms of each runtime_env field, with Ray's errors.

Each ``parse_*`` function takes what the user wrote for one field and
returns its normal form (or None when the field is empty and is dropped, as
Ray drops an empty ``pip`` list or ``env_vars`` dict). A wrong type raises
``TypeError`` and a bad value ``ValueError``, naming the field, in the
caller's process: nothing reaches a node daemon unchecked.

Normal forms:

=================  ====================================================
``working_dir``    a local folder or ``.zip`` path (made absolute), or a
                   package URI (``gcs://...zip``)
``py_modules``     a list of local paths, module objects' folders, or URIs
``excludes``       a list of gitignore-style patterns (None when empty)
``pip``            ``{"packages": [...], "pip_check": bool, ...}``
``uv``             ``{"packages": [...], "uv_check": bool,
                   "uv_pip_install_options": [...]}``
``env_vars``       ``Dict[str, str]`` (None when empty)
``config``         a :class:`~ember.runtime_env.config.RuntimeEnvConfig`
=================  ====================================================
"""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

#: the schemes of package URIs; only the cluster's own store (gcs://) is served
PACKAGE_SCHEME = "gcs://"
REMOTE_SCHEMES = ("s3://", "gs://", "https://", "http://", "file://", "azure://")
PACKAGE_EXTENSIONS = (".zip", ".whl", ".tar.gz", ".tgz", ".tar.xz")

PIP_FIELDS = ("packages", "pip_check", "pip_install_options", "pip_version")
UV_FIELDS = ("packages", "uv_check", "uv_version", "uv_pip_install_options")


def is_uri(value: str) -> bool:
    return "://" in value


def _check_uri(uri: str, field: str, *, job_level: bool) -> None:
    if uri.startswith(PACKAGE_SCHEME):
        if not uri.endswith(PACKAGE_EXTENSIONS):
            raise ValueError(
                f"The {field} URI {uri!r} must name a package ending in one of "
                f"{', '.join(PACKAGE_EXTENSIONS)}."
            )
        return
    if uri.startswith(REMOTE_SCHEMES):
        raise ValueError(
            f"{field} {uri!r}: ember fetches packages only from its own package "
            "store (gcs:// URIs made by init()); download the archive and pass its "
            "local path to init(runtime_env=...) instead."
        )
    if job_level:
        raise ValueError(f"{uri!r} is not a valid URI for {field}.")
    raise ValueError(
        f"{uri} is not a valid URI. Passing directories or modules to be "
        "uploaded is only supported at the job level (in init(runtime_env=...)); "
        "a task or actor may name the gcs:// URI the job's upload made."
    )


def _check_local(path: str, field: str) -> str:
    p = Path(path).expanduser()
    if not p.exists():
        raise ValueError(f"{field} {path!r} does not exist.")
    if (
        field == "py_modules"
        and p.is_file()
        and p.suffix not in (".zip", ".whl", ".py")
    ):
        raise ValueError(
            f"py_modules entry {path!r} must be a folder, a .zip, a .whl or a "
            "module object."
        )
    if p.is_file() and field == "working_dir" and p.suffix != ".zip":
        raise ValueError(
            f"working_dir {path!r} is a file: it must be a folder or a .zip."
        )
    return str(p.resolve())


def parse_working_dir(value: Any, *, job_level: bool = True) -> str:
    if not isinstance(value, (str, os.PathLike)):
        raise TypeError(f"`working_dir` must be a string, got {type(value)}.")
    value = os.fspath(value)
    if is_uri(value):
        _check_uri(value, "working_dir", job_level=job_level)
        return value
    if not job_level:
        _check_uri(value, "working_dir", job_level=False)
    return _check_local(value, "working_dir")


def parse_py_modules(value: Any, *, job_level: bool = True) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"`py_modules` must be a list of strings, got {type(value)}.")
    out: list[str] = []
    for module in value:
        if isinstance(module, types.ModuleType):
            if not job_level:
                _check_uri(repr(module), "py_modules", job_level=False)
            out.append(module_folder(module))
            continue
        if not isinstance(module, (str, os.PathLike)):
            raise TypeError(f"`py_module` must be a string, got {type(module)}.")
        module = os.fspath(module)
        if is_uri(module):
            _check_uri(module, "py_modules", job_level=job_level)
            out.append(module)
        elif not job_level:
            _check_uri(module, "py_modules", job_level=False)
        else:
            out.append(_check_local(module, "py_modules"))
    return out


def module_folder(module: types.ModuleType) -> str:
    """The folder of a package (or the file of a one-file module) to ship."""
    paths = list(getattr(module, "__path__", []) or [])
    if paths:
        return str(Path(paths[0]).resolve())
    file = getattr(module, "__file__", None)
    if not file:
        raise ValueError(
            f"py_modules: module {module.__name__!r} has no file to upload "
            "(a builtin or namespace module)."
        )
    return str(Path(file).resolve())


def parse_excludes(value: Any) -> list[str] | None:
    if isinstance(value, list) and not value:
        return None
    if isinstance(value, list) and all(isinstance(p, str) for p in value):
        return list(value)
    raise TypeError(
        f"runtime_env['excludes'] must be of type List[str], got {type(value)}"
    )


def _requirements_file(path: str) -> list[str]:
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"{p} is not a valid file")
    lines = (line.strip() for line in p.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def _str_list(value: Any, label: str) -> list[str]:
    if not isinstance(value, list):
        raise TypeError(f"{label} must be of type list[str] got {type(value)}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise TypeError(
                f"{label} must be of type list[str] got {type(item)} for {i}-th item."
            )
    return list(value)


def _dedup(packages: list[str]) -> list[str]:
    return list(dict.fromkeys(packages))


def parse_pip(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        result: dict[str, Any] = {
            "packages": _requirements_file(value),
            "pip_check": False,
        }
    elif isinstance(value, list) and all(isinstance(d, str) for d in value):
        result = {"packages": list(value), "pip_check": False}
    elif isinstance(value, dict):
        extra = set(value) - set(PIP_FIELDS)
        if extra:
            raise ValueError(
                "runtime_env['pip'] can only have these fields: packages, pip_check, "
                f"pip_install_options and pip_version, but got: {list(value)}"
            )
        if "pip_check" in value and not isinstance(value["pip_check"], bool):
            raise TypeError(
                "runtime_env['pip']['pip_check'] must be of type bool, "
                f"got {type(value['pip_check'])}"
            )
        if "pip_version" in value and not isinstance(value["pip_version"], str):
            raise TypeError(
                "runtime_env['pip']['pip_version'] must be of type str, "
                f"got {type(value['pip_version'])}"
            )
        if "pip_install_options" in value:
            _str_list(
                value["pip_install_options"],
                "runtime_env['pip']['pip_install_options']",
            )
        if "packages" not in value:
            raise ValueError(
                f"runtime_env['pip'] must include field 'packages', but got {value}"
            )
        result = dict(value)
        result["pip_check"] = value.get("pip_check", False)
        packages = value["packages"]
        if isinstance(packages, str):
            result["packages"] = _requirements_file(packages)
        elif isinstance(packages, list):
            result["packages"] = _str_list(packages, "runtime_env['pip']['packages']")
        else:
            raise ValueError(
                "runtime_env['pip']['packages'] must be of type str of list, "
                f"got: {type(packages)}"
            )
    else:
        raise TypeError(
            f"runtime_env['pip'] must be of type str or List[str], got {type(value)}"
        )
    result["packages"] = _dedup(result["packages"])
    return result if result["packages"] else None


def parse_uv(value: Any) -> dict[str, Any] | None:
    if isinstance(value, str):
        result: dict[str, Any] = {
            "packages": _requirements_file(value),
            "uv_check": False,
        }
    elif isinstance(value, list) and all(isinstance(d, str) for d in value):
        result = {"packages": list(value), "uv_check": False}
    elif isinstance(value, dict):
        if set(value) - set(UV_FIELDS):
            raise ValueError(
                "runtime_env['uv'] can only have these fields: packages, uv_check, "
                f"uv_version and uv_pip_install_options, but got: {list(value)}"
            )
        if "packages" not in value:
            raise ValueError(
                f"runtime_env['uv'] must include field 'packages', but got {value}"
            )
        if "uv_check" in value and not isinstance(value["uv_check"], bool):
            raise TypeError(
                "runtime_env['uv']['uv_check'] must be of type bool, "
                f"got {type(value['uv_check'])}"
            )
        if "uv_version" in value and not isinstance(value["uv_version"], str):
            raise TypeError(
                "runtime_env['uv']['uv_version'] must be of type str, "
                f"got {type(value['uv_version'])}"
            )
        result = dict(value)
        result["uv_check"] = value.get("uv_check", False)
        result["uv_pip_install_options"] = _str_list(
            value.get("uv_pip_install_options", ["--no-cache"]),
            "runtime_env['uv']['uv_pip_install_options']",
        )
        if not isinstance(value["packages"], list):
            raise ValueError(
                "runtime_env['uv']['packages'] must be of type list, "
                f"got: {type(value['packages'])}"
            )
        result["packages"] = _str_list(
            value["packages"], "runtime_env['uv']['packages']"
        )
    else:
        raise TypeError(
            f"runtime_env['uv'] must be of type List[str], or dict, got {type(value)}"
        )
    result["packages"] = _dedup(result["packages"])
    return result if result["packages"] else None


def parse_env_vars(value: Any) -> dict[str, str] | None:
    if not isinstance(value, dict):
        raise TypeError(
            f"runtime_env['env_vars'] must be of type Dict[str, str], got {type(value)}"
        )
    if not value:
        return None
    for k, v in value.items():
        if not isinstance(k, str):
            raise TypeError(
                "runtime_env['env_vars'] must be of type Dict[str, str], but the key "
                f"{k} is of type {type(k)}"
            )
        if not isinstance(v, str):
            raise TypeError(
                "runtime_env['env_vars'] must be of type Dict[str, str], but the "
                f"value {v} is of type {type(v)}"
            )
    return dict(value)
