"""Hypothesis strategies for ember's wire messages, built from their type hints.

``payloads(struct_type)`` draws instances of a message struct whose fields hold
values of the declared types (so the frame decodes and the handler runs), with
edges a hostile or buggy peer would send: empty and odd-length ids, huge and
negative numbers, NaN, deep-ish nesting.  ``junk`` draws msgpack-able values of
any shape (they must be refused by the decoder, not reach a handler).
"""

from __future__ import annotations

import math
import types
import typing
from typing import Any

import msgspec
from hypothesis import strategies as st

_INTS = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.sampled_from([0, 1, -1, 2**31, 2**63 - 1]),
)
_FLOATS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([0.0, -1.0, 1e-9, 1e300, math.inf, math.nan]),
)
_BYTES = st.one_of(
    st.binary(max_size=40),
    st.sampled_from([b"", b"\x00" * 16, b"\xff" * 28]),
)
_TEXT = st.one_of(
    st.text(max_size=30),
    st.sampled_from(["", "tcp:127.0.0.1:1", "unix:/nonexistent", "CPU", "GPU"]),
)


def strategy_for(tp: Any, depth: int = 0) -> st.SearchStrategy[Any]:
    """Values of the annotated type ``tp`` (as msgspec would accept them)."""
    if depth > 4:
        return st.none()
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return junk
    if tp in (type(None), None):
        return st.none()
    if tp is bool:
        return st.booleans()
    if tp is int:
        return _INTS
    if tp is float:
        return _FLOATS
    if tp is str:
        return _TEXT
    if tp is bytes:
        return _BYTES
    if origin in (typing.Union, types.UnionType):
        return st.one_of(*(strategy_for(a, depth + 1) for a in args))
    if origin is typing.Literal:
        return st.sampled_from(args)
    if origin in (list, tuple) and args and origin is list:
        return st.lists(strategy_for(args[0], depth + 1), max_size=4)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return st.lists(strategy_for(args[0], depth + 1), max_size=4).map(tuple)
        return st.tuples(*(strategy_for(a, depth + 1) for a in args))
    if origin is dict:
        return st.dictionaries(
            strategy_for(args[0], depth + 1),
            strategy_for(args[1], depth + 1),
            max_size=4,
        )
    if tp is msgspec.Raw:  # left encoded by the receiver: any msgpack at all
        return junk.map(lambda v: msgspec.Raw(msgspec.msgpack.encode(v)))
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return payloads(tp, depth + 1)
    raise TypeError(f"no strategy for {tp!r}")


def payloads(cls: type[msgspec.Struct], depth: int = 0) -> st.SearchStrategy[Any]:
    """Instances of the message struct ``cls`` with values of its field types."""
    hints = typing.get_type_hints(cls)
    fields = {
        f.name: strategy_for(hints[f.name], depth) for f in msgspec.structs.fields(cls)
    }
    return st.fixed_dictionaries(fields).map(lambda kw: cls(**kw))


junk: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), _INTS, _FLOATS, _TEXT, _BYTES),
    lambda inner: st.one_of(
        st.lists(inner, max_size=5), st.dictionaries(_TEXT, inner, max_size=5)
    ),
    max_leaves=12,
)
