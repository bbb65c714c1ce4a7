"""The handshake: a sans-IO state machine for mutual token authentication.

::

    server -> HELLO   {nonce, proto, ember}
    client -> AUTH    {mac = H(token, "client"|nonce_s|nonce_c), nonce, proto, ember,
                       python, info}
    server -> WELCOME {mac = H(token, "server"|nonce_s|nonce_c), info}  or REJECT {reason}

Every message is decoded against a typed struct whose fields are type- and
size-checked before anything uses them (a nonce is exactly ``NONCE_BYTES``,
strings and maps are bounded), so a peer that has not authenticated can make
this side neither allocate nor hash more than the small frame it sent.  A
malformed message raises :class:`ProtocolError`; a wrong token or an
incompatible version raises :class:`AuthenticationError` (server side, after
queueing a REJECT) or :class:`VersionMismatchError`.  A finished handshake
leaves the connection's two frame-MAC keys in :attr:`Handshake.keys`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import sys
from typing import Annotated, Any

import msgspec

from ember._version import __version__
from ember.rpc.errors import AuthenticationError, ProtocolError, VersionMismatchError
from ember.rpc.frame_mac import session_keys

#: 2: every frame after the handshake carries a MAC (ember.rpc.frame_mac)
#: 3: large frames' MAC is Poly1305 under a per-frame key (was HMAC-SHA256)
PROTOCOL_VERSION = 3
MIN_COMPATIBLE_PROTOCOL = 3

HELLO, AUTH, WELCOME, REJECT = 0, 1, 2, 3
#: frames a peer may send before it has authenticated (handshake messages are tiny)
PRE_AUTH_MAX_FRAME_BYTES = 64 * 1024
NONCE_BYTES = 32
MAC_BYTES = 32

Nonce = Annotated[bytes, msgspec.Meta(min_length=NONCE_BYTES, max_length=NONCE_BYTES)]
Mac = Annotated[bytes, msgspec.Meta(min_length=MAC_BYTES, max_length=MAC_BYTES)]
Version = Annotated[int, msgspec.Meta(ge=-(2**31), le=2**31)]
Short = Annotated[str, msgspec.Meta(max_length=128)]
InfoValue = str | int | float | bool | None
Info = Annotated[dict[Short, InfoValue], msgspec.Meta(max_length=64)]


class Hello(msgspec.Struct):
    nonce: Nonce
    proto: Version = -1
    min_proto: Version = 1
    ember: Short = ""


class Auth(msgspec.Struct):
    mac: Mac
    nonce: Nonce
    proto: Version = -1
    min_proto: Version = 1
    ember: Short = ""
    python: Short = ""
    info: Info = {}


class Welcome(msgspec.Struct):
    mac: Mac
    info: Info = {}


class Reject(msgspec.Struct):
    reason: Annotated[str, msgspec.Meta(max_length=4096)] = ""


_DECODERS: dict[int, msgspec.msgpack.Decoder[Any]] = {
    HELLO: msgspec.msgpack.Decoder(Hello),
    AUTH: msgspec.msgpack.Decoder(Auth),
    WELCOME: msgspec.msgpack.Decoder(Welcome),
    REJECT: msgspec.msgpack.Decoder(Reject),
}


def _mac(token: bytes, *parts: bytes) -> bytes:
    return hmac.new(token, b"".join(parts), hashlib.sha256).digest()


def _check_version(proto: int, min_proto: int, ember: str) -> None:
    if proto < MIN_COMPATIBLE_PROTOCOL or min_proto > PROTOCOL_VERSION:
        raise VersionMismatchError(
            f"protocol version mismatch: this side speaks {PROTOCOL_VERSION} (ember "
            f"{__version__}), the peer speaks {proto} (ember {ember}); install the "
            "same ember version on every node"
        )


class Handshake:
    """One side of the handshake.  Feed it frames; send what it returns.

    ``receive`` returns the ``(kind, payload)`` messages to send, and raises
    when the handshake fails (after returning nothing: a REJECT to send is
    left in :attr:`last_words`).  :attr:`done` turns true when the peer has
    proved it holds the token.
    """

    def __init__(
        self, token: bytes, *, is_server: bool, info: dict[str, Any] | None = None
    ) -> None:
        self._token = token
        self._is_server = is_server
        self._info = dict(info or {})
        self.nonce = os.urandom(NONCE_BYTES)
        self._peer_nonce = b""
        self._sent_auth = False
        self.done = False
        self.peer_info: dict[str, Any] = {}
        #: a message to send before closing (REJECT), set when the handshake fails
        self.last_words: tuple[int, Any] | None = None
        #: ``(send key, receive key)`` for frame MACs, once done
        self.keys: tuple[bytes, bytes] = (b"", b"")

    def hello(self) -> tuple[int, Any]:
        """The server's opening message."""
        return HELLO, {
            "nonce": self.nonce,
            "proto": PROTOCOL_VERSION,
            "ember": __version__,
        }

    def receive(self, kind: int, raw: msgspec.Raw) -> list[tuple[int, Any]]:
        """Take one handshake frame; the messages to send in answer."""
        dec = _DECODERS.get(kind)
        if dec is None:
            raise ProtocolError(f"unexpected frame kind {kind} before authentication")
        try:
            msg = dec.decode(raw)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            raise ProtocolError(f"malformed handshake message: {exc}") from None
        if kind == REJECT:
            raise AuthenticationError(
                f"the cluster refused this connection: {msg.reason}. Pass the cluster "
                "token with --token-file or the EMBER_AUTH_TOKEN environment variable "
                "(on the head node it is in ~/.ember/clusters/<host>_<port>/auth_token)."
            )
        if self._is_server and kind == AUTH:
            return self._on_auth(msg)
        if not self._is_server and kind == HELLO and not self._sent_auth:
            return self._on_hello(msg)
        if not self._is_server and kind == WELCOME and self._sent_auth:
            return self._on_welcome(msg)
        raise ProtocolError(f"unexpected frame kind {kind} before authentication")

    def _on_hello(self, msg: Hello) -> list[tuple[int, Any]]:
        _check_version(msg.proto, msg.min_proto, msg.ember)
        self._peer_nonce = msg.nonce
        self._sent_auth = True
        auth = {
            "mac": _mac(self._token, b"client", self._peer_nonce, self.nonce),
            "nonce": self.nonce,
            "proto": PROTOCOL_VERSION,
            "ember": __version__,
            "python": sys.version.split()[0],
            "info": self._info,
        }
        return [(AUTH, auth)]

    def _on_auth(self, msg: Auth) -> list[tuple[int, Any]]:
        try:
            _check_version(msg.proto, msg.min_proto, msg.ember)
        except VersionMismatchError as exc:
            self.last_words = (REJECT, {"reason": str(exc)})
            raise AuthenticationError(str(exc)) from exc
        want = _mac(self._token, b"client", self.nonce, msg.nonce)
        if not hmac.compare_digest(want, msg.mac):
            self.last_words = (REJECT, {"reason": "wrong or missing cluster token"})
            raise AuthenticationError(
                "refused a peer with a wrong or missing cluster token"
            )
        self._peer_nonce = msg.nonce
        self.peer_info = dict(msg.info)
        c2s, s2c = session_keys(self._token, self.nonce, self._peer_nonce)
        self.keys = (s2c, c2s)
        self.done = True
        welcome = {
            "mac": _mac(self._token, b"server", self.nonce, self._peer_nonce),
            "info": self._info,
        }
        return [(WELCOME, welcome)]

    def _on_welcome(self, msg: Welcome) -> list[tuple[int, Any]]:
        want = _mac(self._token, b"server", self._peer_nonce, self.nonce)
        if not hmac.compare_digest(want, msg.mac):
            raise AuthenticationError("the server does not hold this cluster's token")
        self.peer_info = dict(msg.info)
        self.keys = session_keys(self._token, self._peer_nonce, self.nonce)
        self.done = True
        return []
