"""Make ``import ray`` mean ember: the corpus runs unchanged Ray programs on ember.

Put the ``shim`` directory first on ``PYTHONPATH``. Importing ``ray`` then replaces
this package in ``sys.modules`` by ``ember`` itself, and a finder at the front of
``sys.meta_path`` resolves every ``ray.X.Y`` to the already-imported ``ember.X.Y``
module (the same module object, so there are no duplicate classes). A submodule that
ember lacks fails to import exactly as it would on a Ray without it.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
import types

import ember

_PREFIX = "ray."


class _AliasLoader(importlib.abc.Loader):
    """Loads ``ray.X`` by importing ``ember.X`` and handing back that module."""

    def __init__(self, target: str) -> None:
        self._target = target
        self._own_spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        module = importlib.import_module(self._target)
        self._own_spec = module.__spec__
        return module

    def exec_module(self, module: types.ModuleType) -> None:
        # Already executed under its ember name; the import system has just set
        # ``__spec__`` to the alias spec: give the module back its own.
        module.__spec__ = self._own_spec


class _RayToEmber(importlib.abc.MetaPathFinder):
    """Answers for ``ray.*`` names whose ``ember.*`` counterpart exists."""

    def find_spec(self, fullname, path=None, target=None):
        if not fullname.startswith(_PREFIX):
            return None
        target_name = "ember." + fullname[len(_PREFIX) :]
        try:
            if importlib.util.find_spec(target_name) is None:
                return None
        except ModuleNotFoundError:
            return None
        return importlib.machinery.ModuleSpec(fullname, _AliasLoader(target_name))


sys.meta_path.insert(0, _RayToEmber())
sys.modules[__name__] = ember
