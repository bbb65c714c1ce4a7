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

Constructors take Ray 2.60's parameters (names, order, defaults) and build
the message from them. Every class pickles (``pickle`` and ``cloudpickle``)
with its type, ``args`` and attributes: :meth:`EmberError.__reduce__` rebuilds
the instance without calling its constructor. ``to_bytes``/``from_bytes`` wrap
that pickle in an :class:`ExceptionRecord` (Ray's ``RayException``), which
also keeps the formatted traceback for a receiver that cannot unpickle it.
"""

from __future__ import annotations

import os
import struct
import traceback
import weakref
from dataclasses import dataclass
from typing import Any, ClassVar

import cloudpickle

__all__ = [
    "RAY_EXCEPTION_TYPES",
    "ActorAlreadyExistsError",
    "ActorDiedError",
    "ActorDiedErrorContext",
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
    "ExceptionRecord",
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

#: ``ExceptionRecord.language`` of an exception raised by Python code.
PYTHON = "PYTHON"
_RECORD_MAGIC = b"EMBX\x01"


@dataclass(frozen=True)
class ExceptionRecord:
    """A serialized exception (Ray: the ``RayException`` protobuf message).

    ``serialized_exception`` is the cloudpickled exception (Python only);
    ``formatted_exception_string`` its ``traceback.format_exception`` text, kept
    so a record that cannot be unpickled still says what went wrong.
    """

    language: str
    serialized_exception: bytes
    formatted_exception_string: str

    def to_bytes(self) -> bytes:
        lang = self.language.encode()
        text = self.formatted_exception_string.encode()
        head = struct.pack(">BI", len(lang), len(text))
        return _RECORD_MAGIC + head + lang + text + self.serialized_exception

    @staticmethod
    def from_bytes(b: bytes) -> ExceptionRecord:
        """Parse :meth:`to_bytes` output; ValueError if ``b`` is not a record."""
        b = bytes(b)
        start = len(_RECORD_MAGIC)
        if not b.startswith(_RECORD_MAGIC) or len(b) < start + 5:
            raise ValueError("not a serialized ember exception record")
        n_lang, n_text = struct.unpack_from(">BI", b, start)
        pos = start + 5
        if len(b) < pos + n_lang + n_text:
            raise ValueError("truncated ember exception record")
        lang = b[pos : pos + n_lang].decode()
        text = b[pos + n_lang : pos + n_lang + n_text].decode()
        return ExceptionRecord(lang, b[pos + n_lang + n_text :], text)


def _rebuild(cls: type, args: tuple[Any, ...], state: dict[str, Any]) -> Any:
    """Unpickle an ember exception without calling its constructor."""
    err = cls.__new__(cls, *args)
    err.args = args
    err.__dict__.update(state)
    return err


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
        # Constructors take Ray's parameters, which ``args`` does not hold:
        # rebuild from the instance's state instead of calling ``__init__``.
        return (_rebuild, (type(self), tuple(self.args), dict(self.__dict__)))

    def to_bytes(self) -> bytes:
        """This exception, pickled with its formatted traceback (see ``from_bytes``)."""
        text = "\n".join(
            traceback.format_exception(type(self), self, self.__traceback__)
        )
        return ExceptionRecord(PYTHON, cloudpickle.dumps(self), text).to_bytes()

    @staticmethod
    def from_bytes(b: bytes) -> BaseException:
        """The exception :meth:`to_bytes` serialized."""
        return EmberError.from_ray_exception(ExceptionRecord.from_bytes(b))

    @staticmethod
    def from_ray_exception(ray_exception: Any) -> BaseException:
        """The exception an :class:`ExceptionRecord` holds.

        One that cannot be unpickled becomes an ``UnserializableException``
        carrying the original text; one from another language a
        ``CrossLanguageError``.
        """
        if str(ray_exception.language) != PYTHON:
            return CrossLanguageError(ray_exception)
        try:
            err: BaseException = cloudpickle.loads(ray_exception.serialized_exception)
        except Exception:  # noqa: BLE001 - any failure: fall back to the text
            return UnserializableException(
                getattr(
                    ray_exception,
                    "formatted_exception_string",
                    "No formatted exception string available.",
                )
            )
        return err


RayError = EmberError


class CrossLanguageError(EmberError):
    """Raised by a task or actor written in another language."""

    def __init__(self, ray_exception: Any) -> None:
        super().__init__(
            f"An exception raised from {ray_exception.language}:\n"
            f"{ray_exception.formatted_exception_string}"
        )


class TaskCancelledError(EmberError):
    """The task, or a task it depends on, was cancelled with ``cancel()``."""

    def __init__(
        self, task_id: str | None = None, error_message: str | None = None
    ) -> None:
        super().__init__()
        self.task_id = task_id
        self.error_message = error_message

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
        proctitle: str | None = None,
        pid: int | None = None,
        ip: str | None = None,
        actor_repr: str | None = None,
        actor_id: str | None = None,
    ) -> None:
        if isinstance(cause, TaskError):
            cause = cause.cause
        super().__init__()
        self.function_name = function_name
        self.traceback_str = traceback_str or ""
        self.cause = cause
        self.proctitle = proctitle or f"ember::{function_name}"
        self.pid = pid if pid is not None else os.getpid()
        self.ip = ip
        self.actor_repr = actor_repr
        self.actor_id = actor_id
        self._actor_id = actor_id  # Ray's attribute name
        self.args = (function_name, traceback_str, cause, self.proctitle, self.pid, ip)

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

    def make_dual_exception_instance(self) -> TaskError:
        """An exception that is both a ``TaskError`` and a ``type(self.cause)``.

        Raises:
            TypeError: the cause's class cannot be combined with ``TaskError``
                (incompatible layout, a hostile ``__new__``, no cause).
        """
        cause = self.cause
        if cause is None:
            raise TypeError("this TaskError has no cause to combine with")
        try:
            cls = _dual_class(type(cause))
            inst: Any = type(cause).__new__(cls, *cause.args)
            inst.args = cause.args
        except Exception as exc:  # any failure means "cannot combine"
            raise TypeError(
                f"cannot combine TaskError with {type(cause).__name__}: {exc}"
            ) from exc
        inst.__dict__.update(self.__dict__)
        if isinstance(cause, OSError):
            for attr in ("errno", "strerror", "filename", "filename2"):
                setattr(inst, attr, getattr(cause, attr))
        return inst

    def as_instanceof_cause(self) -> TaskError:
        """Return an exception that is both a ``TaskError`` and a ``type(cause)``.

        Falls back to ``self`` when the cause class cannot be combined (already
        a base of ``TaskError``, incompatible layout, or a hostile ``__new__``).
        """
        cause = self.cause
        if cause is None or issubclass(TaskError, type(cause)):
            return self
        try:
            return self.make_dual_exception_instance()
        except TypeError:
            return self


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
    """The actor could not finish the task (Ray: ``RayActorError``).

    ``actor_id`` is the actor's hex id; ``error_msg`` the whole message.
    """

    BASE_ERROR_MSG: ClassVar[str] = (
        "The actor experienced an error before finishing this task."
    )

    def __init__(
        self,
        actor_id: str | None = None,
        error_msg: str = BASE_ERROR_MSG,
        actor_init_failed: bool = False,
        preempted: bool = False,
    ) -> None:
        super().__init__()
        self.actor_id = actor_id
        self.error_msg = error_msg
        self._actor_init_failed = actor_init_failed
        self._preempted = preempted

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


def _hex_id(actor_id: bytes | str | None) -> str | None:
    if isinstance(actor_id, bytes | bytearray):
        return bytes(actor_id).hex()
    return actor_id


@dataclass(frozen=True)
class ActorDiedErrorContext:
    """Why an actor died, as its owner learns it (Ray: the protobuf of that name).

    ``error_message`` says what happened; the other fields say which actor.
    ``actor_id`` is the id's bytes or hex string.
    """

    error_message: str = ""
    actor_id: bytes | str = b""
    class_name: str = ""
    pid: int = 0
    name: str = ""
    ray_namespace: str = ""
    node_ip_address: str = ""
    never_started: bool = False
    preempted: bool = False


class ActorDiedError(ActorError):
    """The actor is dead: its process exited, was killed, or ``__init__`` raised.

    ``cause`` is the ``TaskError`` its ``__init__`` raised, an
    :class:`ActorDiedErrorContext` (a system-level death), or None (unknown).
    """

    BASE_ERROR_MSG: ClassVar[str] = (
        "The actor died unexpectedly before finishing this task."
    )

    def __init__(self, cause: TaskError | ActorDiedErrorContext | None = None) -> None:
        actor_id: str | None = None
        error_msg = ActorDiedError.BASE_ERROR_MSG
        init_failed = preempted = False
        if isinstance(cause, TaskError):
            init_failed = True
            actor_id = cause.actor_id
            error_msg = f"The actor died because of an error raised in its creation task, {cause}"
        elif isinstance(cause, ActorDiedErrorContext):
            actor_id = _hex_id(cause.actor_id) or None
            lines = [error_msg]
            if cause.class_name:
                lines.append(f"\tclass_name: {cause.class_name}")
            if actor_id:
                lines.append(f"\tactor_id: {actor_id}")
            for key, value in (
                ("pid", cause.pid),
                ("name", cause.name),
                ("namespace", cause.ray_namespace),
                ("ip", cause.node_ip_address),
            ):
                if value:
                    lines.append(f"\t{key}: {value}")
            if cause.error_message:
                lines.append(cause.error_message)
            if cause.never_started:
                lines.append(
                    "The actor never ran: it was cancelled before it started running."
                )
            preempted = cause.preempted
            error_msg = "\n".join(lines)
        elif cause is not None:
            raise TypeError(
                "ActorDiedError(cause) takes a TaskError, an ActorDiedErrorContext or "
                f"None, got {type(cause).__name__}"
            )
        super().__init__(actor_id, error_msg, init_failed, preempted)

    @staticmethod
    def from_task_error(task_error: TaskError) -> ActorDiedError:
        """The error seen by callers of an actor whose ``__init__`` raised."""
        return ActorDiedError(task_error)


class ActorUnavailableError(ActorError):
    """The actor is temporarily unreachable (for example, restarting).

    ``actor_id`` is the id's bytes (Ray) or its hex string.
    """

    def __init__(self, error_message: str, actor_id: bytes | str | None) -> None:
        hex_id = _hex_id(actor_id)
        super().__init__(
            hex_id,
            f"The actor {hex_id} is unavailable: {error_message}. The task may or may "
            "not have been executed on the actor; retry it only if running it twice "
            "is safe.",
        )


class EmberSystemError(EmberError):
    """ember hit an internal system error (Ray: ``RaySystemError``)."""

    def __init__(self, client_exc: object, traceback_str: str | None = None) -> None:
        super().__init__()
        self.client_exc = client_exc
        self.traceback_str = traceback_str

    def __str__(self) -> str:
        msg = f"System error: {self.client_exc}"
        return f"{msg}\ntraceback: {self.traceback_str}" if self.traceback_str else msg


RaySystemError = EmberSystemError


class AuthenticationError(EmberError):
    """The cluster rejected this client's authentication token."""

    def __init__(self, message: str) -> None:
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

    def __init__(self, message: str, rpc_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.rpc_code = rpc_code

    def __str__(self) -> str:
        return str(self.message)


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
    """The node ran low on memory and killed a worker to recover.

    ``message`` says which worker was killed and why (the memory monitor builds it).
    """

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


class NodeDiedError(EmberError):
    """The node is dead or unreachable."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return str(self.message)


#: How a recorded call site separates its frames (shown one per line).
CALL_STACK_LINE_DELIMITER = " | "


class ObjectLostError(EmberError):
    """Every copy of an object was lost and it cannot be fetched."""

    def __init__(
        self,
        object_ref_hex: str,
        owner_address: str | bytes | None,
        call_site: str,
        *,
        _detail: str | None = None,
    ) -> None:
        """``_detail`` (ember): what ember knows of the loss, shown instead of the
        class's generic reason."""
        super().__init__()
        self.object_ref_hex = object_ref_hex
        self.owner_address = owner_address
        self.call_site = (call_site or "").replace(CALL_STACK_LINE_DELIMITER, "\n  ")
        self.message = _detail

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
        addr = self.owner_address
        if isinstance(addr, bytes):
            addr = addr.decode(errors="replace")
        where = f" (owner address {addr})" if addr else ""
        return (
            "The object's owner has exited. This is the Python worker that first "
            f"created the ObjectRef via `.remote()` or `put()`{where}. Check that "
            "worker's log for why it died, and keep the owner alive while others use "
            "its objects."
        )


class ObjectReconstructionFailedError(ObjectLostError):
    """The object was lost and re-running its task to rebuild it failed.

    ``reason`` names why (a key of ``REASON_MESSAGES``, Ray's ``ErrorType`` names);
    ``reason_message`` explains it (default: the reason's standard text).
    """

    REASON_MESSAGES: ClassVar[dict[str, str]] = {
        "OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED": (
            "The object cannot be reconstructed because the maximum number of task "
            "retries has been exceeded. Raise it with `@remote(max_retries=N)`."
        ),
        "OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED": (
            "The object cannot be reconstructed because its lineage was evicted to "
            "reduce memory pressure. Allow more lineage memory in the node config."
        ),
        "OBJECT_UNRECONSTRUCTABLE_PUT": (
            "The object cannot be reconstructed because it was created by put(), "
            "which has no task lineage. Return the value from a task instead."
        ),
        "OBJECT_UNRECONSTRUCTABLE_RETRIES_DISABLED": (
            "The object cannot be reconstructed because its task was created with "
            "max_retries=0. Allow retries with `@remote(max_retries=N)`."
        ),
        "OBJECT_UNRECONSTRUCTABLE_BORROWED": (
            "The object cannot be reconstructed because it crossed an ownership "
            "boundary: only its owner can rebuild it, and this worker borrowed it."
        ),
        "OBJECT_UNRECONSTRUCTABLE_REF_NOT_FOUND": (
            "The object cannot be reconstructed because its reference was not found "
            "in the reference counter. This is a bug; please report it."
        ),
        "OBJECT_UNRECONSTRUCTABLE_TASK_CANCELLED": (
            "The object cannot be reconstructed because the task that would produce "
            "it was cancelled."
        ),
        "OBJECT_UNRECONSTRUCTABLE_LINEAGE_DISABLED": (
            "The object cannot be reconstructed because lineage reconstruction is "
            "disabled for the whole cluster."
        ),
    }
    #: the reason of a subclass constructed without one
    _default_reason: ClassVar[str | None] = None

    def __init__(
        self,
        object_ref_hex: str,
        reason: str | None = None,
        reason_message: str | None = None,
        owner_address: str | bytes | None = None,
        call_site: str = "",
    ) -> None:
        super().__init__(object_ref_hex, owner_address, call_site)
        self.reason = reason or self._default_reason
        self.reason_message = reason_message or self.REASON_MESSAGES.get(
            self.reason or "",
            "The object cannot be reconstructed for an unknown reason. This should "
            "not happen; please report it.",
        )

    def __str__(self) -> str:
        # ``message``: the owner's account of this loss (which task, which node), if any
        detail = f"\n{self.message}" if self.message else ""
        return (
            f"{self._base_str()}\n\n[{self.reason or 'UNKNOWN'}] {self.reason_message}"
            f"{detail}"
        )


class ObjectReconstructionFailedMaxAttemptsExceededError(
    ObjectReconstructionFailedError
):
    """Reconstruction failed because the task ran out of retries (ember; Ray 2.60
    raises the base class with this ``reason``)."""

    _default_reason = "OBJECT_UNRECONSTRUCTABLE_MAX_ATTEMPTS_EXCEEDED"


class ObjectReconstructionFailedLineageEvictedError(ObjectReconstructionFailedError):
    """Reconstruction failed because the task lineage was evicted (ember; Ray 2.60
    raises the base class with this ``reason``)."""

    _default_reason = "OBJECT_UNRECONSTRUCTABLE_LINEAGE_EVICTED"


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

    def __str__(self) -> str:
        lines = ["Failed to set up runtime environment."]
        if self.error_message:
            lines.append(self.error_message)
        lines.append(
            "Check the `runtime_env` option; the node's log (<session>/logs/node*.log) "
            "has the setup's steps."
        )
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

    def __init__(self, error_message: str) -> None:
        super().__init__()
        self.error_message = error_message

    def __str__(self) -> str:
        return f"The task is not schedulable: {self.error_message}"


class ActorUnschedulableError(EmberError):
    """The actor cannot be scheduled (e.g. its affinity node is dead)."""

    def __init__(self, error_message: str) -> None:
        super().__init__()
        self.error_message = error_message

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

    def __init__(self, original_stack_trace: str) -> None:
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

    def __init__(self, error_message: str) -> None:
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message


class ActorHandleNotFoundError(ValueError, EmberError):
    """The actor handle is unknown (e.g. it comes from a previous session)."""

    def __init__(self, error_message: str) -> None:
        super().__init__(error_message)
        self.error_message = error_message

    def __str__(self) -> str:
        return self.error_message


#: The exception classes a Ray program may expect to receive (Ray's list, in its order).
RAY_EXCEPTION_TYPES = [
    PlasmaObjectNotAvailable,
    RayError,
    RayTaskError,
    WorkerCrashedError,
    RayActorError,
    ObjectStoreFullError,
    ObjectLostError,
    ObjectFetchTimedOutError,
    ReferenceCountingAssertionError,
    ObjectReconstructionFailedError,
    OwnerDiedError,
    GetTimeoutError,
    AsyncioActorExit,
    RuntimeEnvSetupError,
    TaskPlacementGroupRemoved,
    ActorPlacementGroupRemoved,
    PendingCallsLimitExceeded,
    LocalRayletDiedError,
    TaskUnschedulableError,
    ActorDiedError,
    ActorUnschedulableError,
    ActorUnavailableError,
    RayChannelError,
    RayChannelTimeoutError,
    OufOfBandObjectRefSerializationException,
    RayCgraphCapacityExceeded,
    UnserializableException,
    ActorAlreadyExistsError,
    ActorHandleNotFoundError,
    AuthenticationError,
]
