"""Checking a call's arguments against the remote function's signature at ``.remote()``.

Ray raises ``TypeError`` at the call site when ``f.remote(...)``, an actor
constructor or an actor method gets arguments its signature cannot bind
(``inspect.Signature.bind``'s message, e.g. "too many positional
arguments"); without the check the error would only surface at ``get``.

Theory of operation: a :class:`CallShape` is computed once per function (or
method); for actor methods its plain-data form (:meth:`CallShape.wire`,
``[lo, hi, params]``) travels inside the actor's method table. Its
fast path is two comparisons: no keyword arguments and a number of positional
arguments between ``lo`` (required positionals) and ``hi`` (all positionals,
or unbounded with ``*args``). Keyword calls take a few set checks that only
ever answer "surely fits". Anything else binds against an
``inspect.Signature`` rebuilt from the parameter kinds (defaults are not
needed to bind, only whether there is one), which gives the message.
"""

from __future__ import annotations

import functools
import inspect
import sys
from typing import Any

_P = inspect.Parameter
_POSITIONAL = (_P.POSITIONAL_ONLY, _P.POSITIONAL_OR_KEYWORD)
_KIND: Any = type(_P.POSITIONAL_ONLY)
_UNBOUNDED = sys.maxsize


class CallShape:
    """What arguments a callable accepts: fast checks first, ``bind`` for the message."""

    __slots__ = ("_kw_ok", "_pos", "_req_kw", "_sig", "_varkw", "hi", "lo", "params")

    def __init__(self, params: tuple[tuple[str, int, bool], ...]) -> None:
        #: (name, inspect.Parameter kind as int, has a default)
        self.params = params
        lo = hi = 0
        pos: list[tuple[str, bool, bool]] = []  # (name, required, positional-only)
        req_kw: list[str] = []
        kw_ok: set[str] = set()
        self._varkw = False
        for name, kind, has_default in params:
            if kind in _POSITIONAL:
                hi += 1
                lo += 0 if has_default else 1
                pos.append((name, not has_default, kind == _P.POSITIONAL_ONLY))
            elif kind == _P.VAR_POSITIONAL:
                hi = _UNBOUNDED
            elif kind == _P.VAR_KEYWORD:
                self._varkw = True
            elif not has_default:
                req_kw.append(name)
            if kind in (_P.POSITIONAL_OR_KEYWORD, _P.KEYWORD_ONLY):
                kw_ok.add(name)
        # a required keyword-only parameter: a call without keywords never fits
        self.lo = _UNBOUNDED if req_kw else lo
        self.hi = hi
        self._pos = tuple(pos)
        self._req_kw = tuple(req_kw)
        self._kw_ok = frozenset(kw_ok)
        self._sig: inspect.Signature | None = None

    @classmethod
    def of(cls, fn: Any, drop_first: bool = False) -> CallShape | None:
        """The shape of ``fn`` (without its first parameter), or None if unknown."""
        try:
            sig = inspect.signature(fn)
        except (TypeError, ValueError):
            return None
        params = list(sig.parameters.values())
        if drop_first:
            if not params or params[0].kind not in _POSITIONAL:
                return None
            params = params[1:]
        return cls(
            tuple((p.name, int(p.kind), p.default is not _P.empty) for p in params)
        )

    def check(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``TypeError`` (Ray's text) if the call cannot bind."""
        n = len(args)
        if kwargs:
            if n <= self.hi and self._keywords_fit(n, kwargs):
                return
        elif self.lo <= n <= self.hi:
            return
        self.bind(args, kwargs)

    def _keywords_fit(self, n: int, kwargs: dict[str, Any]) -> bool:
        """True only if binding surely succeeds (False: let ``bind`` decide)."""
        filled = self._pos[:n]
        for name, _, _ in filled:
            if name in kwargs:
                return False
        if not self._varkw and not self._kw_ok.issuperset(kwargs):
            return False
        for name, required, posonly in self._pos[n:]:
            if required and (posonly or name not in kwargs):
                return False
        return all(name in kwargs for name in self._req_kw)

    def bind(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Bind against the full signature: raises ``TypeError`` if it does not fit."""
        if self._sig is None:
            self._sig = inspect.Signature(
                [
                    _P(name, _KIND(kind), default=None)
                    if has_default
                    else _P(name, _KIND(kind))
                    for name, kind, has_default in self.params
                ]
            )
        try:
            self._sig.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(str(exc)) from None

    def wire(self) -> list[Any]:
        """``[lo, hi, params]``: plain data for the actor's method table."""
        return [self.lo, self.hi, [list(p) for p in self.params]]

    def __reduce__(self) -> tuple[Any, ...]:
        return (CallShape, (self.params,))


def check_wire(shape: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """:meth:`CallShape.check` for the :meth:`CallShape.wire` form (slow path)."""
    _from_wire(tuple(tuple(p) for p in shape[2])).check(args, kwargs)


@functools.lru_cache(maxsize=1024)
def _from_wire(params: tuple[tuple[str, int, bool], ...]) -> CallShape:
    return CallShape(params)


def of_class(cls: type) -> CallShape | None:
    """The shape of ``cls(...)``: its ``__init__`` without ``self``."""
    init = getattr(cls, "__init__", None)
    if init is object.__init__:
        return CallShape(()) if cls.__new__ is object.__new__ else None
    return CallShape.of(init, drop_first=True)


def of_method(cls: type, name: str) -> list[Any] | None:
    """The wire shape of ``handle.name.remote(...)``: without ``self`` unless static."""
    static = isinstance(inspect.getattr_static(cls, name, None), staticmethod)
    # getattr on the class: a classmethod comes back bound, without ``cls``
    fn = getattr(cls, name, None)
    if fn is None:
        return None
    bound = static or inspect.ismethod(fn)
    shape = CallShape.of(fn, drop_first=not bound)
    return None if shape is None else shape.wire()
