"""Public exception classes raised to ember (and Ray) programs.

Every class carries an ember name and, where Ray spells it differently, a Ray
alias bound to the *same* class object, so ``import ember as ray`` code that
says ``except ray.exceptions.RayTaskError`` keeps working. The inheritance
follows Ray 2.60's ``ray.exceptions``::

    EmberError (RayError)
    ├── CrossLanguageError
    ├── TaskCancelledError
    ├── TaskError (RayTaskError)          .cause, remote traceback, pid, ip;
    │                                     as_instanceof_cause() -> TaskError(ValueError)
    ├── LocalNodeDiedError (LocalRayletDiedError)
    ├── WorkerCrashedError
    ├── ActorError (RayActorError)
    │   ├── ActorDiedError
    │   └── ActorUnavailableError
    ├── EmberSystemError (RaySystemError)
    │   ├── StreamingGeneratorReplayInconsistentError
    │   ├── RayCgraphCapacityExceeded  RayDirectTransportError
    │   └── RayChannelError
    │       └── RayChannelTimeoutError (also TimeoutError)
    ├── AuthenticationError  UserCodeException  RpcError
    ├── ObjectStoreFullError  OutOfDiskError  OutOfMemoryError  NodeDiedError
    ├── ObjectLostError
    │   ├── ObjectFetchTimedOutError
    │   ├── ReferenceCountingAssertionError (also AssertionError)
    │   ├── ObjectFreedError
    │   ├── OwnerDiedError
    │   └── ObjectReconstructionFailedError
    │       ├── ObjectReconstructionFailedMaxAttemptsExceededError
    │       └── ObjectReconstructionFailedLineageEvictedError
    ├── GetTimeoutError (also TimeoutError)
    ├── PlasmaObjectNotAvailable  AsyncioActorExit  RuntimeEnvSetupError
    ├── TaskPlacementGroupRemoved  ActorPlacementGroupRemoved
    ├── PendingCallsLimitExceeded
    ├── TaskUnschedulableError  ActorUnschedulableError
    ├── ObjectRefStreamEndOfStreamError  OufOfBandObjectRefSerializationException
    ├── UnserializableException
    ├── ActorAlreadyExistsError (ValueError first, as in Ray)
    └── ActorHandleNotFoundError (ValueError first, as in Ray)

Every class pickles (``pickle`` and ``cloudpickle``) with its type, message and
attributes. A class whose constructor takes more than a message records its
arguments in ``_init_args``; :meth:`EmberError.__reduce__` rebuilds from them.
"""

from __future__ import annotations

import os
import weakref
from typing import Any, ClassVar

__all__ = [
    "ActorAlreadyExistsError",
    "ActorDiedError",
    "ActorError",
    "ActorHandleNotFoundError",
    "ActorPlacementGroupRemoved",
    "ActorUnavailableError",
    "ActorUnschedulableError",
    "AsyncioActorExit",
    "AuthenticationError",
    "CrossLanguageError",
    "EmberError",
    "EmberSystemError",
    "GetTimeoutError",
    "LocalNodeDiedError",
    "LocalRayletDiedError",
    "NodeDiedError",
    "ObjectFetchTimedOutError",
    "ObjectFreedError",
    "ObjectLostError",
    "ObjectReconstructionFailedError",
    "ObjectReconstructionFailedLineageEvictedError",
    "ObjectReconstructionFailedMaxAttemptsExceededError",
    "ObjectRefStreamEndOfStreamError",
    "ObjectStoreFullError",
    "OufOfBandObjectRefSerializationException",
    "OutOfDiskError",
    "OutOfMemoryError",
    "OwnerDiedError",
    "PendingCallsLimitExceeded",
    "PlasmaObjectNotAvailable",
    "RayActorError",
    "RayCgraphCapacityExceeded",
    "RayChannelError",
    "RayChannelTimeoutError",
    "RayDirectTransportError",
    "RayError",
    "RaySystemError",
    "RayTaskError",
    "ReferenceCountingAssertionError",
    "RpcError",
    "RuntimeEnvSetupError",
    "StreamingGeneratorReplayInconsistentError",
    "TaskCancelledError",
    "TaskError",
    "TaskPlacementGroupRemoved",
    "TaskUnschedulableError",
    "UnserializableException",
    "UserCodeException",
    "WorkerCrashedError",
]


class EmberError(Exception):
    """Base class of every exception ember raises to user code (Ray: ``RayError``).

    Subclasses may set ``default_message``; constructing them with no
    arguments then uses it, so ``str(WorkerCrashedError())`` is helpful.
    """

    default_message: ClassVar[str] = ""

    def __init__(self, *args: Any) -> None:
        if not args and self.default_message:
            args = (self.default_message,)
        super().__init__(*args)

    def __reduce__(self) -> Any:
        init_args = self.__dict__.get("_init_args")
        if init_args is None:
            return super().__reduce__()
        return (type(self), tuple(init_args), dict(self.__dict__))


RayError = EmberError


def _record(exc: BaseException, *init_args: Any) -> None:
    """Remember constructor arguments (for pickling) and set a plain ``args``."""
    exc.__dict__["_init_args"] = init_args
    exc.args = (str(exc),)


class CrossLanguageError(EmberError):
    """Raised by a task or actor written in another language."""


class TaskCancelledError(EmberError):
    """The task, or a task it depends on, was cancelled with ``cancel()``."""

    def __init__(
        self, task_id: str | None = None, error_message: str | None = None
    ) -> None:
        super().__init__()
        self.task_id = task_id
        self.error_message = error_message
        _record(self, task_id, error_message)

    def __str__(self) -> str:
        msg = f"Task {self.task_id} was cancelled. " if self.task_id else ""
        if self.error_message:
            return msg + self.error_message
        if not msg:
            msg = "This task or one of its dependencies was cancelled. "
        return (
            msg + "Its result is unavailable; resubmit the task if you still need it."
        )


# Traceback frames from ember's own machinery, hidden from users' tracebacks.
_INTERNAL_FRAME_MARKERS = (
    "/ember/worker/",
    "/ember/runtime/",
    "/ember/api/",
    "/ember/rpc/",
    "/ember/protocol/",
)

# Dual classes built by as_instanceof_cause, one per cause class.
_DUAL_CLASSES: weakref.WeakKeyDictionary[type, type] = weakref.WeakKeyDictionary()


class TaskError(EmberError):
    """User code in a remote task or actor method raised (Ray: ``RayTaskError``).

    ``ember.get`` raises ``as_instanceof_cause()``, which is also an instance of
    the original exception class, so ``except ValueError`` works on the driver.
    A ``TaskError`` raised inside a task is unwrapped: ``.cause`` is always the
    innermost user exception, while the traceback text keeps every layer.
    """

    cause: BaseException | None

    def __init__(
        self,
        function_name: str,
        traceback_str: str,
        cause: BaseException | None,
        proctitle: str = "",
        pid: int | None = None,
        ip: str | None = None,
        actor_repr: str | None = None,
        actor_id: str | None = None,
    ) -> None:
        if isinstance(cause, TaskError):
            cause = cause.cause
        super().__init__(function_name, traceback_str, cause)
        self.function_name = function_name
        self.traceback_str = traceback_str or ""
        self.cause = cause
        self.proctitle = proctitle or f"ember::{function_name}"
        self.pid = pid if pid is not None else os.getpid()
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = actor_id

    def _header(self) -> str:
        title = (
            self.proctitle if self.proctitle.endswith(")") else f"{self.proctitle}()"
        )
        fields = [f"pid={self.pid}"]
        if self.ip:
            fields.append(f"ip={self.ip}")
        if self.actor_repr:
            fields += [f"actor_id={self.actor_id}", f"repr={self.actor_repr}"]
        return f"{title} ({', '.join(fields)})"

    def __str__(self) -> str:
        out: list[str] = []
        hiding = False
        saw_header = False
        for line in self.traceback_str.strip().split("\n"):
            if line.startswith("Traceback "):
                out.append(self._header())
                saw_header, hiding = True, False
            elif line.startswith("  File ") and any(
                m in line.replace("\\", "/") for m in _INTERNAL_FRAME_MARKERS
            ):
                hiding = True
            elif hiding and line.startswith("    "):
                continue  # source or caret line of a hidden frame
            else:
                hiding = False
                out.append(line)
        if not saw_header:
            out.insert(0, self._header())
        return "\n".join(out)

    def __reduce__(self) -> Any:
        fields = (
            self.cause,
            self.function_name,
            self.traceback_str,
            self.proctitle,
            self.pid,
            self.ip,
            self.actor_repr,
            self.actor_id,
        )
        return (_rebuild_task_error, (*fields, getattr(type(self), "_dual", False)))

    def as_instanceof_cause(self) -> TaskError:
        """Return an exception that is both a ``TaskError`` and a ``type(cause)``.

        Falls back to ``self`` when the cause class cannot be combined (already
        a base of ``TaskError``, incompatible layout, or a hostile ``__new__``).
        """
        cause = self.cause
        if cause is None or issubclass(TaskError, type(cause)):
            return self
        try:
            cls = _dual_class(type(cause))
            inst: Any = type(cause).__new__(cls, *cause.args)
            inst.args = cause.args
        except Exception:  # noqa: BLE001 - any failure means "can't combine"
            return self
        inst.__dict__.update(self.__dict__)
        if isinstance(cause, OSError):
            for attr in ("errno", "strerror", "filename", "filename2"):
                setattr(inst, attr, getattr(cause, attr))
        return inst


RayTaskError = TaskError


def _dual_getattr(self: TaskError, name: str) -> Any:
    """Fall back to the cause's attributes, so ``e.code`` works on the driver."""
    cause = self.__dict__.get("cause")
    if cause is None or name.startswith("__"):
        raise AttributeError(name)
    return getattr(cause, name)


def _dual_class(cause_cls: type) -> type:
    cls = _DUAL_CLASSES.get(cause_cls)
    if cls is None:
        name = f"TaskError({cause_cls.__name__})"
        namespace = {
            "__module__": __name__,
            "__qualname__": name,
            "__getattr__": _dual_getattr,
            "__str__": TaskError.__str__,
            "__reduce__": TaskError.__reduce__,
            "_dual": True,
        }
        cls = type(name, (TaskError, cause_cls), namespace)
        _DUAL_CLASSES[cause_cls] = cls
    return cls


def _rebuild_task_error(
    cause: BaseException | None,
    function_name: str,
    traceback_str: str,
    proctitle: str,
    pid: int | None,
    ip: str | None,
    actor_repr: str | None,
    actor_id: str | None,
    as_cause: bool,
) -> TaskError:
    """Unpickle a ``TaskError`` (or its dual form) from its fields."""
    err = TaskError(
        function_name, traceback_str, cause, proctitle, pid, ip, actor_repr, actor_id
    )
    return err.as_instanceof_cause() if as_cause else err


class LocalNodeDiedError(EmberError):
    """The node daemon this process is attached to died (Ray: ``LocalRayletDiedError``)."""

    default_message = (
        "The local ember node died, so the task's result is lost. "
        "Check the node's log files under the session directory, then restart the node."
    )


LocalRayletDiedError = LocalNodeDiedError


class WorkerCrashedError(EmberError):
    """The worker process died unexpectedly while executing a task."""

    default_message = (
        "The worker died unexpectedly while executing this task. It may have been "
        "killed by the OS (for example, out of memory) or crashed in native code. "
        "Check the worker-*.log files in the session directory for details."
    )


class ActorError(EmberError):
    """The actor could not finish the task (Ray: ``RayActorError``)."""

    default_message = "The actor experienced an error before finishing this task."

    def __init__(
        self,
        message: str | None = None,
        actor_id: str | None = None,
        actor_init_failed: bool = False,
        preempted: bool = False,
    ) -> None:
        super().__init__()
        self.actor_id = actor_id
        self.error_msg = message or self.default_message
        self._actor_init_failed = actor_init_failed
        self._preempted = preempted
        _record(self, message, actor_id, actor_init_failed, preempted)

    def __str__(self) -> str:
        return self.error_msg

    @property
    def actor_init_failed(self) -> bool:
        """Whether the actor died while running its ``__init__``."""
        return self._actor_init_failed

    @property
    def preempted(self) -> bool:
        """Whether the actor died because its node was preempted."""
        return self._preempted


RayActorError = ActorError


class ActorDiedError(ActorError):
    """The actor is dead: its process exited, was killed, or ``__init__`` raised."""

    default_message = (
        "The actor died unexpectedly before finishing this task. If you need the "
        "actor to survive failures, create it with max_restarts > 0 (and "
        "max_task_retries > 0 to retry its calls)."
    )

    @staticmethod
    def from_task_error(task_error: TaskError) -> ActorDiedError:
        """Build the error seen by callers of an actor whose ``__init__`` raised."""
        message = (
            "The actor died because of an error raised in its creation task, "
            f"{task_error}"
        )
        return ActorDiedError(message, task_error.actor_id, actor_init_failed=True)


class ActorUnavailableError(ActorError):
    """The actor is temporarily unreachable (for example, restarting)."""

    def __init__(self, message: str | None = None, actor_id: str | None = None) -> None:
        text = (
            f"The actor {actor_id} is unavailable: {message or 'it is not reachable'}. "
            "The task may or may not have been executed on the actor; retry it if "
            "it is safe to run twice."
        )
        super().__init__(text, actor_id)
        _record(self, message, actor_id)


class EmberSystemError(EmberError):
    """ember hit an internal system error (Ray: ``RaySystemError``)."""

    def __init__(
        self, client_exc: object = "", traceback_str: str | None = None
    ) -> None:
        super().__init__()
        self.client_exc = client_exc
        self.traceback_str = traceback_str
        _record(self, client_exc, traceback_str)

    def __str__(self) -> str:
        msg = f"System error: {self.client_exc}"
        return f"{msg}\ntraceback: {self.traceback_str}" if self.traceback_str else msg


RaySystemError = EmberSystemError


class AuthenticationError(EmberError):
    """The cluster rejected this client's authentication token."""

    def __init__(self, message: str = "Authentication failed") -> None:
        super().__init__(message)
        self.message = message
        self.__suppress_context__ = True

    def __str__(self) -> str:
        return (
            f"{self.message}. Make sure this client uses the same cluster token as the "
            "cluster it connects to."
        )


class UserCodeException(EmberError):
    """Wraps an exception raised by user code; retry rules look at its cause."""


class RpcError(EmberError):
    """The underlying RPC system failed (Ray's developer-API ``RpcError``)."""

    def __init__(
        self, message: str = "RPC failed", rpc_code: int | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.rpc_code = rpc_code
        _record(self, message, rpc_code)


class ObjectStoreFullError(EmberError):
    """The object store is full of live objects and cannot accept another."""

    def __str__(self) -> str:
        return super().__str__() + (
            "\nThe local object store is full of objects that are still in scope and "
            "cannot be evicted. Tip: delete ObjectRefs you no longer need, or start "
            "the node with a larger object store."
        )


class OutOfDiskError(EmberError):
    """Both the object store and the spill disk are full."""

    def __str__(self) -> str:
        return super().__str__() + (
            "\nThe object cannot be created because the local object store is full "
            "and the local disk is over capacity. Tip: free disk space (check with "
            "`df`) or release objects you no longer need."
        )


class OutOfMemoryError(EmberError):
    """The node ran low on memory and killed a worker to recover."""

    default_message = (
        "The node is running out of memory, so a task or actor was killed. "
        "Reduce the memory each task uses or request `memory=` so fewer run at once."
    )


class NodeDiedError(EmberError):
    """The node is dead or unreachable."""

    default_message = "The node running this task died or became unreachable."


class ObjectLostError(EmberError):
    """Every copy of an object was lost and it cannot be fetched."""

    def __init__(
        self,
        object_ref_hex: str = "",
        owner_address: str = "",
        call_site: str = "",
        message: str | None = None,
    ) -> None:
        super().__init__()
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = call_site
        self.message = message
        _record(self, object_ref_hex, owner_address, call_site, message)

    def _base_str(self) -> str:
        msg = f"Failed to retrieve object {self.object_ref_hex}. "
        if self.call_site:
            return msg + f"The ObjectRef was created at: {self.call_site}"
        return msg + (
            "To see where this ObjectRef was created, set the environment variable "
            "EMBER_RECORD_REF_CREATION_SITES=1 before starting ember."
        )

    def _reason(self) -> str:
        return (
            f"All copies of {self.object_ref_hex} have been lost due to node failure. "
            "Check the cluster logs for the failure."
        )

    def __str__(self) -> str:
        return f"{self._base_str()}\n\n{self.message or self._reason()}"


class ObjectFetchTimedOutError(ObjectLostError):
    """Fetching an object timed out because no node holds a copy."""

    def _reason(self) -> str:
        return (
            f"Fetch for object {self.object_ref_hex} timed out because no locations "
            "were found for the object. This may indicate a bug; please report it."
        )


class ReferenceCountingAssertionError(ObjectLostError, AssertionError):
    """An object was deleted while a reference to it still existed."""

    def _reason(self) -> str:
        return (
            "The object has already been deleted by the reference counting protocol. "
            "This should not happen; please report it as a bug."
        )


class ObjectFreedError(ObjectLostError):
    """The object was explicitly freed by the application."""

    def _reason(self) -> str:
        return (
            "The object was manually freed. Only free objects once no task or "
            "driver needs them anymore."
        )


class OwnerDiedError(ObjectLostError):
    """The worker that owned the object died, so the object is gone."""

    def _reason(self) -> str:
        where = f" (owner address {self.owner_address})" if self.owner_address else ""
        return (
            "The object's owner has exited. This is the Python worker that first "
            f"created the ObjectRef via `.remote()` or `put()`{where}. Check that "
            "worker's log for why it died, and keep the owner alive while others use "
            "its objects."
        )


class ObjectReconstructionFailedError(ObjectLostError):
    """The object was lost and re-running its task to rebuild it failed."""

    def _reason(self) -> str:
        return (
            "The object cannot be reconstructed because it was created by an actor, "
            "`put()`, or a worker other than its owner. Return the value from a task "
            "if it must survive node failures."
        )


class ObjectReconstructionFailedMaxAttemptsExceededError(
    ObjectReconstructionFailedError
):
    """Reconstruction failed because the task ran out of retries."""

    def _reason(self) -> str:
        return (
            "The object cannot be reconstructed because the maximum number of task "
            "retries has been exceeded. Raise it with `@remote(max_retries=N)` "
            "(default 3)."
        )


class ObjectReconstructionFailedLineageEvictedError(ObjectReconstructionFailedError):
    """Reconstruction failed because the task lineage was evicted."""

    def _reason(self) -> str:
        return (
            "The object cannot be reconstructed because its lineage was evicted to "
            "reduce memory pressure. Allow more lineage memory in the node config."
        )


class GetTimeoutError(EmberError, TimeoutError):
    """``get()`` or ``wait()`` reached its timeout before objects were ready."""

    default_message = (
        "Get timed out: some object(s) not ready. Increase `timeout`, or use "
        "`wait()` to take the results that are ready."
    )


class PlasmaObjectNotAvailable(EmberError):
    """An object was not available within the given timeout."""


class AsyncioActorExit(EmberError):
    """An asyncio actor exited on purpose via ``exit_actor()``."""


class RuntimeEnvSetupError(EmberError):
    """The task's or actor's runtime environment could not be set up."""

    def __init__(self, error_message: str | None = None) -> None:
        super().__init__()
        self.error_message = error_message
        _record(self, error_message)

    def __str__(self) -> str:
        lines = ["Failed to set up runtime environment."]
        if self.error_message:
            lines.append(self.error_message)
        lines.append("Check the `runtime_env` option and the runtime env agent log.")
        return "\n".join(lines)


class TaskPlacementGroupRemoved(EmberError):
    """The placement group this task was scheduled into was removed."""

    default_message = (
        "The placement group corresponding to this task has been removed. "
        "Keep the placement group alive until its tasks finish."
    )


class ActorPlacementGroupRemoved(EmberError):
    """The placement group this actor was scheduled into was removed."""

    default_message = (
        "The placement group corresponding to this Actor has been removed. "
        "Keep the placement group alive for the actor's lifetime."
    )


class PendingCallsLimitExceeded(EmberError):
    """An actor already has ``max_pending_calls`` calls queued from this caller."""

    default_message = (
        "Too many pending calls to this actor (max_pending_calls reached). Wait for "
        "earlier calls to finish, or raise max_pending_calls."
    )


class TaskUnschedulableError(EmberError):
    """The task cannot be scheduled (e.g. its affinity node is dead)."""

    def __init__(
        self, error_message: str = "no node can satisfy its requirements"
    ) -> None:
        super().__init__()
        self.error_message = error_message
        _record(self, error_message)

    def __str__(self) -> str:
        return f"The task is not schedulable: {self.error_message}"


class ActorUnschedulableError(EmberError):
    """The actor cannot be scheduled (e.g. its affinity node is dead)."""

    def __init__(
        self, error_message: str = "no node can satisfy its requirements"
    ) -> None:
        super().__init__()
        self.error_message = error_message
        _record(self, error_message)

    def __str__(self) -> str:
        return f"The actor is not schedulable: {self.error_message}"


class ObjectRefStreamEndOfStreamError(EmberError):
    """A streaming generator has no more ObjectRefs to yield."""


class StreamingGeneratorReplayInconsistentError(EmberSystemError):
    """A retried streaming generator yielded a different number of objects."""


class OufOfBandObjectRefSerializationException(EmberError):
    """An ObjectRef was pickled out of band (Ray's spelling, kept on purpose)."""


class RayChannelError(EmberSystemError):
    """A compiled-graph channel failed."""


class RayChannelTimeoutError(RayChannelError, TimeoutError):
    """A compiled-graph channel operation timed out."""


class RayCgraphCapacityExceeded(EmberSystemError):
    """A compiled-graph channel buffer is at capacity."""


class RayDirectTransportError(EmberSystemError):
    """A direct (out-of-object-store) transfer failed."""


class UnserializableException(EmberError):
    """A remote exception could not be unpickled; carries its text instead."""

    def __init__(self, original_stack_trace: str = "") -> None:
        super().__init__(original_stack_trace)
        self._original_stack_trace = original_stack_trace

    def __str__(self) -> str:
        return (
            "Failed to deserialize an exception raised remotely. Make the exception "
            "class importable on the driver and picklable (a custom __init__ needs "
            "a matching __reduce__).\nOriginal exception:\n"
            f"{self._original_stack_trace}"
        )


class ActorAlreadyExistsError(ValueError, EmberError):
    """A named actor with this name already exists in the namespace."""

    def __init__(self, error_message: str = "The actor name is already taken.") -> None:
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message


class ActorHandleNotFoundError(ValueError, EmberError):
    """The actor handle is unknown (e.g. it comes from a previous session)."""

    def __init__(self, error_message: str = "The actor handle was not found.") -> None:
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message
