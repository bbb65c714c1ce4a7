"""The cluster token in HTTP: the Bearer header, the session cookie and their checks."""

from __future__ import annotations

import hashlib
import hmac

from aiohttp import web

#: the session cookie's name
COOKIE = "ember_dashboard"
#: what the cookie's HMAC is taken over (the key is the token)
COOKIE_CONTEXT = b"ember-dashboard"


def cookie_value(token: str) -> str:
    """The session cookie's value for ``token`` (an HMAC, never the token)."""
    return hmac.new(token.encode(), COOKIE_CONTEXT, hashlib.sha256).hexdigest()


def bearer(request: web.Request) -> str:
    """The token of an ``Authorization: Bearer`` header ("" if none)."""
    kind, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if kind.lower() == "bearer" else ""


def set_session_cookie(response: web.StreamResponse, token: str) -> None:
    response.set_cookie(
        COOKIE, cookie_value(token), httponly=True, samesite="Strict", path="/"
    )


class TokenCheck:
    """Whether a request carries ``token``, by header, cookie or ``?token=``."""

    def __init__(self, token: str) -> None:
        self._token = token.encode()
        self._cookie = cookie_value(token).encode()

    def matches(self, given: str) -> bool:
        return bool(given) and hmac.compare_digest(given.encode(), self._token)

    def allowed(self, request: web.Request) -> bool:
        if self.matches(bearer(request)):
            return True
        cookie = request.cookies.get(COOKIE, "")
        return bool(cookie) and hmac.compare_digest(cookie.encode(), self._cookie)
