"""How a worker learns its runtime env's cwd and ``sys.path``: two environment variables.

The node daemon sets them when it starts a worker of an env with a
working_dir or py_modules (``node/runtime_envs.PreparedEnv.environ``);
the worker applies them first thing (:func:`apply`), before it imports any
user code. A forked worker (the fork server's interpreter started before
the env existed) needs this; an exec'd one also gets ``PYTHONPATH``, which
the processes its tasks start inherit.
"""

from __future__ import annotations

import os
import sys

CWD_ENV = "EMBER_RUNTIME_ENV_CWD"
PATHS_ENV = "EMBER_RUNTIME_ENV_PATHS"


def paths() -> list[str]:
    """This worker's runtime-env folders, first on its ``sys.path``."""
    raw = os.environ.get(PATHS_ENV, "")
    return [p for p in raw.split(os.pathsep) if p]


def apply() -> None:
    """chdir into the env's working_dir and put its folders first on ``sys.path``."""
    cwd = os.environ.get(CWD_ENV)
    if cwd:
        os.chdir(cwd)
    keep_first()


def keep_first() -> None:
    """(Again) move the env's folders to the front of ``sys.path``."""
    for p in reversed(paths()):
        while p in sys.path:
            sys.path.remove(p)
        sys.path.insert(0, p)
