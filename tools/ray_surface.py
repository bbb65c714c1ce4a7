"""Dump the public surface of Ray Core's modules to tests/compat/ray_surface_2_60.json.

Run with a Python that has Ray installed (not ember's venv)::

    /tmp/ray-venv/bin/python tools/ray_surface.py

For each module Ray Core users import, the table lists its public names:
``__all__`` where the module defines it, otherwise the names bound at the module's
top level by ``def``/``class``/assignment (so ``Dict``, ``os`` or ``PublicAPI``
imported for Ray's own use are not counted), minus loggers and TypeVars. Names
starting with ``_`` are never counted. For a callable it records the signature
(parameter name, kind, default as ``repr``); for a class also its public members
(methods with signatures, properties, other attributes) that are not inherited
from ``object`` or ``BaseException``. ``tests/unit/test_surface.py`` compares the
table with ember's modules of the same paths.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import logging
import pathlib
import sys
import types
import typing
from typing import Any

MODULES = [
    "ray",
    "ray.util",
    "ray.util.queue",
    "ray.util.multiprocessing",
    "ray.util.placement_group",
    "ray.util.scheduling_strategies",
    "ray.util.actor_pool",
    "ray.exceptions",
    "ray.runtime_context",
    "ray.actor",
    "ray.dag",
    "ray.cluster_utils",
]

OUT = pathlib.Path(__file__).resolve().parents[1] / "tests/compat/ray_surface_2_60.json"
_BASE_MEMBERS = set(dir(object)) | set(dir(BaseException))


def signature_of(obj: Any) -> list[list[Any]] | None:
    """``[[name, kind, repr(default) or None], ...]``, or None when unknown."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        return None
    out = []
    for p in sig.parameters.values():
        default = None if p.default is inspect.Parameter.empty else repr(p.default)
        out.append([p.name, p.kind.name, default])
    return out


def _toplevel_bindings(module: types.ModuleType) -> set[str]:
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return set(vars(module))
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    names.add(target.id)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def public_names(module: types.ModuleType) -> list[str]:
    declared = getattr(module, "__all__", None)
    if declared is not None:
        names = set(declared)
    else:
        names = _toplevel_bindings(module)
    keep = []
    for name in names:
        if name.startswith("_"):
            continue
        try:
            value = getattr(module, name)
        except AttributeError:
            continue
        except Exception:  # a lazily imported submodule that fails (ray.workflow)
            keep.append(name)
            continue
        if declared is None and isinstance(value, (logging.Logger, typing.TypeVar)):
            continue
        keep.append(name)
    return sorted(keep)


def member_kind(cls: type, name: str) -> str:
    raw = inspect.getattr_static(cls, name)
    if isinstance(raw, classmethod):
        return "classmethod"
    if isinstance(raw, staticmethod):
        return "staticmethod"
    if isinstance(raw, property) or inspect.isgetsetdescriptor(raw):
        return "property"
    if inspect.isfunction(raw) or inspect.ismethoddescriptor(raw) or callable(raw):
        # Cython methods are method descriptors; classmethods of Cython types show
        # up as builtin methods bound to the class.
        bound = getattr(cls, name)
        if inspect.ismethod(bound) or (
            inspect.isbuiltin(bound) and getattr(bound, "__self__", None) is cls
        ):
            return "classmethod"
        return "method"
    return "attribute"


def describe_class(cls: type) -> dict[str, Any]:
    members: dict[str, Any] = {}
    for name in sorted(dir(cls)):
        if name.startswith("_") or name in _BASE_MEMBERS:
            continue
        kind = member_kind(cls, name)
        entry: dict[str, Any] = {"kind": kind}
        if kind in ("method", "classmethod", "staticmethod"):
            entry["signature"] = signature_of(getattr(cls, name))
        members[name] = entry
    return {"kind": "class", "signature": signature_of(cls), "members": members}


def describe(value: Any) -> dict[str, Any]:
    if isinstance(value, types.ModuleType):
        return {"kind": "module"}
    if isinstance(value, type):
        return describe_class(value)
    if callable(value):
        return {"kind": "function", "signature": signature_of(value)}
    return {"kind": "constant", "value": repr(value)}


def main() -> int:
    import ray

    table: dict[str, Any] = {
        "_generated": "GENERATED by tools/ray_surface.py; do not edit by hand.",
        "ray_version": ray.__version__,
        "modules": {},
    }
    for module_name in MODULES:
        importlib.import_module(module_name)
        # sys.modules, not attribute access: ray.util.placement_group is a function.
        module = sys.modules[module_name]
        entries: dict[str, Any] = {}
        for name in public_names(module):
            try:
                entries[name] = describe(getattr(module, name))
            except Exception as exc:  # noqa: BLE001 - recorded, not hidden
                entries[name] = {"kind": "unavailable", "error": repr(exc)[:200]}
        table["modules"][module_name] = entries
    OUT.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(f"wrote {OUT} ({sum(len(m) for m in table['modules'].values())} names)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
