"""Runtime environments (Ray's ``ray.runtime_env``): ``RuntimeEnv`` and ``RuntimeEnvConfig``.

The package holds the pure and driver-side parts: field checks
(``fields.py``), the class and merge/hash rules (``runtime_env.py``), the
config (``config.py``), packing and the upload of packages (``packing.py``,
``upload.py``), building a pip/uv virtualenv (``virtualenv.py``), the cache
policy (``cache.py``) and what a worker reads of its env
(``worker_env.py``). The node side is ``ember/node/runtime_envs.py``; the
package store is ``ember/control/packages.py``.
"""

from __future__ import annotations

from ember.runtime_env.config import RuntimeEnvConfig as RuntimeEnvConfig
from ember.runtime_env.runtime_env import RuntimeEnv as RuntimeEnv

__all__ = ["RuntimeEnv", "RuntimeEnvConfig"]
