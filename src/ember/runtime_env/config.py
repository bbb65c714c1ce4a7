"""``RuntimeEnvConfig``: how a runtime environment is set up (not what is in it).

As in Ray, the config is a dict subclass with ``setup_timeout_seconds``
(default 600; -1 = no limit), ``eager_install`` (default True) and
``log_files``. It is not part of an environment's content hash: two envs
that differ only in their config share one built environment.
"""

from __future__ import annotations

import logging
from copy import deepcopy
from typing import Any

logger = logging.getLogger(__name__)

DEFAULT_SETUP_TIMEOUT_S = 600


class RuntimeEnvConfig(dict[str, Any]):
    """Options of a runtime environment's setup.

    Args:
        setup_timeout_seconds: how long a node may take to set the env up
            before the task or actor fails with ``RuntimeEnvSetupError``;
            -1 waits for ever.
        eager_install: for ``init(runtime_env=...)``: start building the
            job's env on the driver's node at init, before any task needs it.
        log_files: accepted for Ray compatibility (there is no dashboard).
    """

    known_fields: frozenset[str] = frozenset(
        {"setup_timeout_seconds", "eager_install", "log_files"}
    )

    def __init__(
        self,
        setup_timeout_seconds: int = DEFAULT_SETUP_TIMEOUT_S,
        eager_install: bool = True,
        log_files: list[str] | None = None,
    ) -> None:
        super().__init__()
        if isinstance(setup_timeout_seconds, bool) or not isinstance(
            setup_timeout_seconds, int
        ):
            raise TypeError(
                "setup_timeout_seconds must be of type int, "
                f"got: {type(setup_timeout_seconds)}"
            )
        if setup_timeout_seconds <= 0 and setup_timeout_seconds != -1:
            raise ValueError(
                "setup_timeout_seconds must be greater than zero or equals to -1, "
                f"got: {setup_timeout_seconds}"
            )
        if not isinstance(eager_install, bool):
            raise TypeError(
                f"eager_install must be a boolean. got {type(eager_install)}"
            )
        if log_files is None:
            log_files = []
        if not isinstance(log_files, list):
            raise TypeError(
                "log_files must be a list of strings or None, got "
                f"{log_files} with type {type(log_files)}."
            )
        if not all(isinstance(f, str) for f in log_files):
            raise TypeError("Each item in log_files must be a string.")
        self["setup_timeout_seconds"] = setup_timeout_seconds
        self["eager_install"] = eager_install
        self["log_files"] = list(log_files)

    @staticmethod
    def parse_and_validate_runtime_env_config(config: Any) -> RuntimeEnvConfig:
        """A RuntimeEnvConfig from a dict (unknown keys are warned about and dropped)."""
        if isinstance(config, RuntimeEnvConfig):
            return config
        if isinstance(config, dict):
            unknown = set(config) - RuntimeEnvConfig.known_fields
            if unknown:
                logger.warning(
                    "runtime_env['config']: ignoring unknown entries %s",
                    sorted(unknown),
                )
            return RuntimeEnvConfig(
                **{
                    k: v
                    for k, v in config.items()
                    if k in RuntimeEnvConfig.known_fields
                }
            )
        raise TypeError(
            "runtime_env['config'] must be of type dict or RuntimeEnvConfig, "
            f"got: {type(config)}"
        )

    @classmethod
    def default_config(cls) -> RuntimeEnvConfig:
        return cls()

    def to_dict(self) -> dict[str, Any]:
        return dict(deepcopy(self))
