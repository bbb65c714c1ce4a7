"""Errors and functions as values: pickling fallbacks, capture reports, call shapes."""

from __future__ import annotations

import inspect
import itertools
import pickle
import threading

import pytest

from ember import exceptions
from ember.api.call_shape import CallShape, check_wire
from ember.runtime import function_pickles, serialization


def _refuse(*args):
    raise TypeError("this error cannot be rebuilt")


class _TwoArgs(Exception):
    def __init__(self, a, b):
        super().__init__(f"{a}+{b}")

    def __reduce__(self):
        # Rebuilding fails whatever the process installed for exceptions
        # (dask installs tblib's pickling, which would rebuild it otherwise).
        return (_refuse, self.args)


def _task_error(cause: BaseException) -> exceptions.TaskError:
    return exceptions.TaskError("f", 'Traceback\n  File "x.py", line 1\nBoom', cause)


def test_error_that_does_not_unpickle_becomes_unserializable_exception():
    err = pickle.loads(serialization.error_bytes(_task_error(_TwoArgs(1, 2))))
    assert isinstance(err, exceptions.UnserializableException)
    assert "ember::f()" in str(err)
    assert 'File "x.py", line 1' in str(err)


def test_unpicklable_cause_is_replaced_and_traceback_kept():
    class Holds(Exception):
        pass

    cause = Holds("held")
    cause.lock = threading.Lock()
    err = pickle.loads(serialization.error_bytes(_task_error(cause)))
    assert isinstance(err, exceptions.TaskError)
    assert isinstance(err.cause, exceptions.EmberError)
    assert "isn't serializable" in str(err.cause)
    assert 'File "x.py", line 1' in str(err.cause)


def test_code_pickled_by_value_keeps_its_file_name():
    def local():
        return 1

    fn = pickle.loads(serialization.dumps(local))
    assert fn.__code__.co_filename == __file__


_BIG = b"y" * (function_pickles.FUNCTION_SIZE_WARN_BYTES + 1)
_LOCK = threading.Lock()


def _uses_big():
    return len(_BIG)


def _uses_lock():
    with _LOCK:
        return 1


def test_large_function_warns_naming_the_global(capsys, monkeypatch):
    monkeypatch.setattr(_uses_big, "__module__", "__main__")  # pickle by value
    function_pickles.dumps_function(_uses_big)
    err = capsys.readouterr().err
    assert "_uses_big is very large" in err
    assert "the global '_BIG'" in err


def test_unpicklable_global_is_named(monkeypatch):
    monkeypatch.setattr(_uses_lock, "__module__", "__main__")
    with pytest.raises(TypeError, match=r"_uses_lock.*The global '_LOCK'"):
        function_pickles.dumps_function(_uses_lock)


_SIGNATURES = [
    lambda a, b=1, *c, d, e=2, **f: 0,
    lambda a, /, b, *, c: 0,
    lambda a, /, **k: 0,
    lambda *a: 0,
    lambda a=1, b=2: 0,
    lambda a, b, /, c=1: 0,
]


@pytest.mark.parametrize("fn", _SIGNATURES)
def test_call_shape_agrees_with_inspect(fn):
    shape = CallShape.of(fn)
    sig = inspect.signature(fn)
    names = ["a", "b", "c", "d", "e", "z"]
    for n in range(4):
        for r in range(4):
            for keys in itertools.combinations(names, r):
                args, kwargs = tuple(range(n)), dict.fromkeys(keys, 0)
                try:
                    sig.bind(*args, **kwargs)
                    expected = None
                except TypeError as exc:
                    expected = str(exc)
                for check in (shape.check, lambda a, k: check_wire(shape.wire(), a, k)):
                    try:
                        check(args, kwargs)
                        got = None
                    except TypeError as exc:
                        got = str(exc)
                    assert got == expected, (args, kwargs)
