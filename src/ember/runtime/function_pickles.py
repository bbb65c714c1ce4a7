"""Pickling functions and classes for the function table, and what they capture.

A remote function or actor class is pickled by value once per driver (the
export). Users meet two failure modes there, and both are reported naming
what the function captures: a capture that cannot be pickled (``TypeError``
naming the global, closure variable or class attribute) and one so large that
every worker would load it (a warning on stderr above 10 MB, ``ValueError``
above 100 MB; Ray's thresholds).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from ember.runtime.serialization import dumps

#: A function or class pickled larger than this warns (Ray's thresholds).
FUNCTION_SIZE_WARN_BYTES = 10**7
FUNCTION_SIZE_ERROR_BYTES = 10**8
_MIB = 1024 * 1024


def dumps_function(fn: Any) -> bytes:
    """Pickle a function or class (by value where needed) for the function table.

    Raises TypeError naming the function and the captured global or variable
    that does not pickle. Warns on stderr (once per export, as Ray does) when
    the result is larger than 10 MB, naming the largest capture; raises
    ValueError above 100 MB.
    """
    kind = "actor" if isinstance(fn, type) else "remote function"
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)}"
    try:
        data = dumps(fn)
    except Exception as exc:
        culprit = _failing_capture(fn)
        where = (
            f" {culprit[:1].upper()}{culprit[1:]} cannot be pickled." if culprit else ""
        )
        raise TypeError(
            f"Could not serialize the {kind} {name}: {exc}.{where} Create unpicklable "
            "resources (locks, sockets, open files, clients) inside the task or actor "
            "instead of capturing them."
        ) from exc
    if len(data) > FUNCTION_SIZE_WARN_BYTES:
        size = len(data) // _MIB
        culprit = _largest_capture(fn)
        what = f" ({culprit})" if culprit else ""
        advice = (
            "Check that its definition is not implicitly capturing a large array or "
            f"other object in scope{what}. Tip: use ember.put() to put large objects "
            "in the object store and pass the ObjectRef instead."
        )
        if len(data) > FUNCTION_SIZE_ERROR_BYTES:
            limit = FUNCTION_SIZE_ERROR_BYTES // _MIB
            raise ValueError(
                f"The {kind} {name} is too large ({size} MiB > {limit} MiB). {advice}"
            )
        sys.stderr.write(
            f"Warning: The {kind} {name} is very large ({size} MiB). {advice}\n"
        )
    return data


def _captures(fn: Any) -> list[tuple[str, Any]]:
    """What pickling ``fn`` by value takes along: globals, closure variables."""
    if isinstance(fn, type):
        out: list[tuple[str, Any]] = []
        for attr, value in vars(fn).items():
            inner = getattr(value, "__func__", value)
            if isinstance(inner, types.FunctionType):
                out += _captures(inner)
            elif not attr.startswith("__"):
                out.append((f"the class attribute {attr!r}", value))
        return out
    code = getattr(fn, "__code__", None)
    if code is None:
        return []
    names: set[str] = set()
    stack = [code]
    while stack:
        c = stack.pop()
        names.update(c.co_names)
        stack += [k for k in c.co_consts if isinstance(k, types.CodeType)]
    g = getattr(fn, "__globals__", {})
    out = [
        (f"the global {n!r}", g[n])
        for n in sorted(names)
        if n in g and not isinstance(g[n], types.ModuleType)
    ]
    cells = zip(code.co_freevars, fn.__closure__ or (), strict=False)
    for n, cell in cells:
        try:
            out.append((f"the captured variable {n!r}", cell.cell_contents))
        except ValueError:  # an empty cell
            continue
    return out


def _failing_capture(fn: Any) -> str:
    for label, value in _captures(fn):
        try:
            dumps(value, buffer_callback=lambda b: None)
        except Exception:  # noqa: BLE001  (user values)
            return f"{label} ({_short_repr(value)})"
    return ""


def _largest_capture(fn: Any) -> str:
    best, best_size = "", 0
    for label, value in _captures(fn):
        try:
            size = len(dumps(value))
        except Exception:  # noqa: BLE001  (user values)
            continue
        if size > best_size:
            best, best_size = label, size
    if best_size < _MIB:
        return ""
    return f"{best} is {best_size // _MIB} MiB pickled"


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001  (a user __repr__ that raises)
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= 80 else text[:77] + "..."
