"""The typed errors of ember.serve, named as Ray Serve names them (``ray.serve.exceptions``)."""

from __future__ import annotations

__all__ = [
    "BackPressureError",
    "DeploymentUnavailableError",
    "RayServeException",
    "RequestCancelledError",
    "ServeConfigError",
]


class RayServeException(Exception):
    """Base of Serve's errors (Ray's name, kept so ``except`` clauses port unchanged)."""


class ServeConfigError(RayServeException, ValueError):
    """A deployment option, an autoscaling config or a config file is invalid."""


class BackPressureError(RayServeException):
    """A handle's queue is full: ``max_queued_requests`` requests already wait for a replica."""

    def __init__(
        self,
        num_queued_requests: int = 0,
        max_queued_requests: int = 0,
        status_code: int = 503,
        retry_after_s: float | None = None,
    ) -> None:
        self.num_queued_requests = num_queued_requests
        self.max_queued_requests = max_queued_requests
        self.status_code = status_code
        self.retry_after_s = retry_after_s
        super().__init__(self.message)

    @property
    def message(self) -> str:
        return (
            f"Request dropped due to backpressure (num_queued_requests="
            f"{self.num_queued_requests}, max_queued_requests="
            f"{self.max_queued_requests})."
        )

    def __reduce__(self):
        return (
            type(self),
            (
                self.num_queued_requests,
                self.max_queued_requests,
                self.status_code,
                self.retry_after_s,
            ),
        )


class DeploymentUnavailableError(RayServeException):
    """The deployment cannot take requests: it failed to deploy or was deleted."""

    def __init__(self, deployment_id: str = "") -> None:
        self.deployment_id = deployment_id
        super().__init__(
            f"Deployment {deployment_id!r} is unavailable: it failed to deploy "
            "or was deleted."
        )

    def __reduce__(self):
        return (type(self), (self.deployment_id,))


class RequestCancelledError(RayServeException):
    """The request was cancelled (``DeploymentResponse.cancel()``)."""
