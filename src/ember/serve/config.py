"""Serve's option records: a deployment's config, its autoscaling config, the HTTP options."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from ember.serve.exceptions import ServeConfigError

__all__ = [
    "AutoscalingConfig",
    "DeploymentConfig",
    "HTTPOptions",
    "DEFAULT_AUTOSCALING",
]


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ServeConfigError(msg)


@dataclass
class AutoscalingConfig:
    """How a deployment's replica count follows its queue (Ray's field names and defaults)."""

    min_replicas: int = 1
    initial_replicas: int | None = None
    max_replicas: int = 1
    target_ongoing_requests: float = 2.0
    metrics_interval_s: float = 10.0
    look_back_period_s: float = 30.0
    smoothing_factor: float = 1.0
    upscale_smoothing_factor: float | None = None
    downscale_smoothing_factor: float | None = None
    upscaling_factor: float | None = None
    downscaling_factor: float | None = None
    downscale_delay_s: float = 600.0
    upscale_delay_s: float = 30.0

    def __post_init__(self) -> None:
        _check(
            isinstance(self.min_replicas, int) and self.min_replicas >= 0,
            f"min_replicas must be an int >= 0, got {self.min_replicas!r}",
        )
        _check(
            isinstance(self.max_replicas, int) and self.max_replicas >= 1,
            f"max_replicas must be an int >= 1, got {self.max_replicas!r}",
        )
        _check(
            self.min_replicas <= self.max_replicas,
            f"min_replicas ({self.min_replicas}) must be <= max_replicas "
            f"({self.max_replicas})",
        )
        if self.initial_replicas is not None:
            _check(
                self.min_replicas <= self.initial_replicas <= self.max_replicas,
                "initial_replicas must lie between min_replicas and max_replicas",
            )
        _check(
            self.target_ongoing_requests > 0,
            "target_ongoing_requests must be > 0",
        )
        for name in (
            "metrics_interval_s",
            "look_back_period_s",
            "downscale_delay_s",
            "upscale_delay_s",
        ):
            _check(getattr(self, name) >= 0, f"{name} must be >= 0")

    @classmethod
    def coerce(cls, value: Any) -> AutoscalingConfig | None:
        if value is None or isinstance(value, AutoscalingConfig):
            return value
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            unknown = set(value) - known
            _check(not unknown, f"unknown autoscaling_config fields: {sorted(unknown)}")
            return cls(**value)
        raise ServeConfigError(
            f"autoscaling_config must be a dict or AutoscalingConfig, got {value!r}"
        )

    def up_factor(self) -> float:
        f = self.upscaling_factor or self.upscale_smoothing_factor
        return f if f is not None else self.smoothing_factor

    def down_factor(self) -> float:
        f = self.downscaling_factor or self.downscale_smoothing_factor
        return f if f is not None else self.smoothing_factor


#: what ``num_replicas="auto"`` means (Ray's values)
DEFAULT_AUTOSCALING = {
    "min_replicas": 1,
    "max_replicas": 100,
    "target_ongoing_requests": 2.0,
}

ACTOR_OPTIONS = {
    "accelerator_type",
    "memory",
    "num_cpus",
    "num_gpus",
    "object_store_memory",
    "resources",
    "runtime_env",
    "label_selector",
}


@dataclass
class DeploymentConfig:
    """Everything the controller needs to run one deployment's replicas."""

    num_replicas: int = 1
    max_ongoing_requests: int = 5
    max_queued_requests: int = -1
    user_config: Any = None
    autoscaling_config: AutoscalingConfig | None = None
    graceful_shutdown_wait_loop_s: float = 2.0
    graceful_shutdown_timeout_s: float = 20.0
    health_check_period_s: float = 10.0
    health_check_timeout_s: float = 30.0
    ray_actor_options: dict[str, Any] = field(default_factory=dict)
    max_constructor_retry_count: int = 20

    def __post_init__(self) -> None:
        if self.num_replicas == "auto":
            base = dict(DEFAULT_AUTOSCALING)
            if isinstance(self.autoscaling_config, dict):
                base.update(self.autoscaling_config)
            self.autoscaling_config = AutoscalingConfig.coerce(base)
            self.num_replicas = 1
        self.autoscaling_config = AutoscalingConfig.coerce(self.autoscaling_config)
        _check(
            isinstance(self.num_replicas, int) and self.num_replicas >= 0,
            f"num_replicas must be an int >= 0 or 'auto', got {self.num_replicas!r}",
        )
        _check(
            isinstance(self.max_ongoing_requests, int)
            and self.max_ongoing_requests > 0,
            f"max_ongoing_requests must be an int > 0, got {self.max_ongoing_requests!r}",
        )
        _check(
            isinstance(self.max_queued_requests, int)
            and (self.max_queued_requests == -1 or self.max_queued_requests > 0),
            f"max_queued_requests must be -1 or an int > 0, got {self.max_queued_requests!r}",
        )
        for name in (
            "graceful_shutdown_wait_loop_s",
            "graceful_shutdown_timeout_s",
            "health_check_period_s",
            "health_check_timeout_s",
        ):
            _check(getattr(self, name) >= 0, f"{name} must be >= 0")
        opts = dict(self.ray_actor_options or {})
        unknown = set(opts) - ACTOR_OPTIONS
        _check(
            not unknown,
            f"ray_actor_options may hold only {sorted(ACTOR_OPTIONS)}; got {sorted(unknown)}",
        )
        opts.setdefault("num_cpus", 1)
        self.ray_actor_options = opts

    def start_failure_limit(self) -> int:
        """Failed starts in a row after which the deployment is DEPLOY_FAILED (Ray's rule)."""
        return min(self.max_constructor_retry_count, 3 * max(self.initial_target(), 1))

    def initial_target(self) -> int:
        a = self.autoscaling_config
        if a is None:
            return self.num_replicas
        return a.initial_replicas if a.initial_replicas is not None else a.min_replicas

    def replace(self, **changes: Any) -> DeploymentConfig:
        return dataclasses.replace(self, **changes)


@dataclass
class HTTPOptions:
    """Where the HTTP proxy listens (Ray's default: 127.0.0.1:8000)."""

    host: str = "127.0.0.1"
    port: int = 8000
    root_path: str = ""
    request_timeout_s: float | None = None
    keep_alive_timeout_s: float = 5.0

    @classmethod
    def coerce(cls, value: Any) -> HTTPOptions:
        if value is None:
            return cls()
        if isinstance(value, HTTPOptions):
            return value
        if isinstance(value, dict):
            known = {f.name for f in dataclasses.fields(cls)}
            extra = set(value) - known - {"location", "middlewares"}
            _check(not extra, f"unknown http_options: {sorted(extra)}")
            opts = cls(**{k: v for k, v in value.items() if k in known})
            _check(
                isinstance(opts.port, int) and 0 <= opts.port < 65536,
                f"http_options port must be an int in [0, 65535], got {opts.port!r}",
            )
            return opts
        raise ServeConfigError(f"http_options must be a dict, got {value!r}")
