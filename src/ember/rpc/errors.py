"""RPC failures as named data.

::

    RpcError
    ├── ConnectionClosedError     we closed the connection
    ├── ConnectionLostError       the peer or the network broke it
    │   └── AuthenticationError   the peer refused our token (or we refused its)
    ├── RpcTimeoutError           a deadline passed (also a TimeoutError)
    ├── RemoteError               the remote handler raised
    └── ProtocolError             a malformed, oversized or unknown frame
        └── VersionMismatchError  peers speak incompatible protocol versions
"""

from __future__ import annotations


class RpcError(Exception):
    """Base of every RPC failure."""


class ConnectionClosedError(RpcError):
    """The connection was closed by this side."""


class ConnectionLostError(RpcError):
    """The peer went away, or the network broke the connection."""


class AuthenticationError(ConnectionLostError):
    """The handshake failed: the cluster token is wrong or missing."""


class RpcTimeoutError(RpcError, TimeoutError):
    """A request's deadline passed before its reply arrived."""


class ProtocolError(RpcError):
    """A peer sent a frame this side cannot accept."""


class VersionMismatchError(ProtocolError):
    """The peers' protocol versions cannot talk to each other."""


def class_path(cls: type) -> str:
    """``module.qualname`` of a class: how an ERROR frame names it."""
    return f"{cls.__module__}.{cls.__qualname__}"


def lineage(exc: BaseException) -> list[str]:
    """The class paths of ``exc``'s class and its bases (most derived first)."""
    return [
        class_path(c)
        for c in type(exc).__mro__
        if c is not object and c is not BaseException
    ]


class RemoteError(RpcError):
    """The handler on the remote side raised.

    Attributes:
        type_name: the remote exception's class name (for messages only).
        remote_message: its message.
        remote_traceback: the remote traceback text.
        payload: a pickled exception the handler chose to send, or b"".
        lineage: class paths (``module.qualname``) of the remote exception's
            class and its bases; match them with :meth:`is_a`.
    """

    def __init__(
        self,
        type_name: str,
        remote_message: str,
        remote_traceback: str = "",
        payload: bytes = b"",
        lineage: list[str] | None = None,
    ) -> None:
        super().__init__(f"{type_name}: {remote_message}")
        self.type_name = type_name
        self.remote_message = remote_message
        self.remote_traceback = remote_traceback
        self.payload = payload
        self.lineage = list(lineage) if lineage is not None else []

    def is_a(self, *classes: type[BaseException]) -> bool:
        """Whether the remote exception was an instance of one of ``classes``."""
        return any(class_path(c) in self.lineage for c in classes)

    def __reduce__(self):  # type: ignore[no-untyped-def,unused-ignore]
        return (
            type(self),
            (
                self.type_name,
                self.remote_message,
                self.remote_traceback,
                self.payload,
                self.lineage,
            ),
        )
