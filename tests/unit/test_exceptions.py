"""Tests for the public exception hierarchy in ``ember.exceptions``."""

from __future__ import annotations

import inspect
import pickle
import traceback

import cloudpickle
import pytest
from hypothesis import given, strategies as st

from ember import exceptions as ex


def _task_error(cause: BaseException) -> ex.TaskError:
    try:
        raise cause
    except BaseException:
        tb = traceback.format_exc()
    return ex.TaskError("my_task", tb, cause, pid=123, ip="10.0.0.1")


def _sample(cls: type) -> BaseException:
    """An instance of ``cls`` built with Ray 2.60's constructor arguments."""
    if issubclass(cls, ex.TaskError):
        return _task_error(ValueError("boom"))
    if issubclass(cls, ex.ObjectReconstructionFailedError):
        return cls("ab" * 14, None, None, "owner:1", "call site")
    if issubclass(cls, ex.ObjectLostError):
        return cls("ab" * 14, "owner:1", "call site")
    if cls is ex.ActorDiedError:
        return cls(ex.ActorDiedErrorContext("it broke", b"\xa1\xb2", "A", pid=7))
    if cls is ex.ActorUnavailableError:
        return cls("restarting", b"\xa1\xb2")
    if issubclass(cls, ex.ActorError):
        return cls("a1b2", "actor broke")
    if cls is ex.TaskCancelledError:
        return cls("t123")
    if cls is ex.CrossLanguageError:
        return cls(ex.ExceptionRecord("JAVA", b"", "java.lang.Error: x"))
    if cls is ex.RpcError:
        return cls("rpc failed", 14)
    params = inspect.signature(cls).parameters.values()
    required = [
        p for p in params if p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD
    ]
    if required:
        return cls(*(f"something went wrong {i}" for i in range(len(required))))
    return cls() if str(cls()) else cls("something went wrong")


CLASSES = sorted(
    {v for n in ex.__all__ if isinstance(v := getattr(ex, n), type)}
    - {ex.ActorDiedErrorContext, ex.ExceptionRecord},
    key=lambda c: c.__name__,
)


def _state(err: BaseException) -> dict[str, object]:
    return {k: v for k, v in vars(err).items() if k != "cause"}


@pytest.mark.parametrize(
    ("dumps", "loads"),
    [
        (pickle.dumps, pickle.loads),
        (cloudpickle.dumps, cloudpickle.loads),
        (lambda e: e.to_bytes(), ex.RayError.from_bytes),
    ],
    ids=["pickle", "cloudpickle", "to_bytes"],
)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip(cls: type, dumps, loads) -> None:
    err = _sample(cls)
    back = loads(dumps(err))
    assert type(back) is cls
    assert str(back) == str(err)
    assert str(err)
    assert repr(back.args) == repr(err.args)
    assert _state(back) == _state(err)


_text = st.text(max_size=40)


@given(
    cls=st.sampled_from(CLASSES),
    args=st.lists(_text, min_size=1, max_size=5),
)
def test_any_message_round_trips(cls: type, args: list[str]) -> None:
    """Property: whatever strings a constructor gets, the unpickled copy says the same."""
    params = [
        p
        for p in inspect.signature(cls).parameters.values()
        if p.kind is p.POSITIONAL_OR_KEYWORD and not p.name.startswith("_")
    ]
    if cls is ex.ActorDiedError or cls is ex.CrossLanguageError:
        err = (
            cls(ex.ActorDiedErrorContext(*args[:1], class_name=args[-1]))
            if cls is ex.ActorDiedError
            else cls(ex.ExceptionRecord("JAVA", b"", args[0]))
        )
    elif issubclass(cls, ex.TaskError):
        err = cls(args[0], args[-1], ValueError(*args))
    else:
        required = [p for p in params if p.default is p.empty]
        n = max(len(required), min(len(params), len(args)))
        err = cls(*(args[i % len(args)] for i in range(n)))
    for back in (
        pickle.loads(pickle.dumps(err)),
        cloudpickle.loads(cloudpickle.dumps(err)),
        ex.RayError.from_bytes(err.to_bytes()),
    ):
        assert type(back) is type(err)
        assert str(back) == str(err)
        assert _state(back) == _state(err)


def test_all_is_complete_and_exported() -> None:
    public = {
        n
        for n, v in vars(ex).items()
        if isinstance(v, type)
        and issubclass(v, BaseException)
        and not n.startswith("_")
    }
    extras = {"RAY_EXCEPTION_TYPES", "ActorDiedErrorContext", "ExceptionRecord"}
    assert public == set(ex.__all__) - extras


@pytest.mark.parametrize(
    ("alias", "target"),
    [
        ("RayError", "EmberError"),
        ("RayTaskError", "TaskError"),
        ("RayActorError", "ActorError"),
        ("LocalRayletDiedError", "LocalNodeDiedError"),
        ("RaySystemError", "EmberSystemError"),
    ],
)
def test_aliases_are_same_object(alias: str, target: str) -> None:
    assert getattr(ex, alias) is getattr(ex, target)


@pytest.mark.parametrize(
    ("sub", "base"),
    [
        (ex.TaskError, ex.RayError),
        (ex.ActorDiedError, ex.RayActorError),
        (ex.ActorUnavailableError, ex.RayActorError),
        (ex.OwnerDiedError, ex.ObjectLostError),
        (ex.ObjectFetchTimedOutError, ex.ObjectLostError),
        (ex.ObjectReconstructionFailedError, ex.ObjectLostError),
        (
            ex.ObjectReconstructionFailedMaxAttemptsExceededError,
            ex.ObjectReconstructionFailedError,
        ),
        (
            ex.ObjectReconstructionFailedLineageEvictedError,
            ex.ObjectReconstructionFailedError,
        ),
        (ex.ReferenceCountingAssertionError, ex.ObjectLostError),
        (ex.ReferenceCountingAssertionError, AssertionError),
        (ex.GetTimeoutError, TimeoutError),
        (ex.GetTimeoutError, ex.RayError),
        (ex.RayChannelTimeoutError, TimeoutError),
        (ex.RayChannelError, ex.RaySystemError),
        (ex.ActorAlreadyExistsError, ValueError),
        (ex.ActorAlreadyExistsError, ex.RayError),
        (ex.ActorHandleNotFoundError, ValueError),
        (ex.WorkerCrashedError, ex.RayError),
        (ex.StreamingGeneratorReplayInconsistentError, ex.RaySystemError),
    ],
)
def test_inheritance_matches_ray(sub: type, base: type) -> None:
    assert issubclass(sub, base)


def test_everything_is_an_ember_error() -> None:
    for cls in CLASSES:
        assert issubclass(cls, ex.EmberError)
    assert set(ex.RAY_EXCEPTION_TYPES) <= set(CLASSES)


class CustomError(Exception):
    def __init__(self, message: str, code: int = 0) -> None:
        super().__init__(message, code)
        self.code = code


@pytest.mark.parametrize(
    "cause",
    [
        ValueError("bad value"),
        CustomError("custom", 7),
        KeyError("k"),
        FileNotFoundError(2, "missing", "/x"),
    ],
)
def test_as_instanceof_cause(cause: BaseException) -> None:
    err = _task_error(cause)
    dual = err.as_instanceof_cause()
    assert isinstance(dual, ex.TaskError)
    assert isinstance(dual, ex.RayTaskError)
    assert isinstance(dual, type(cause))
    assert dual.cause is cause
    assert dual.args == cause.args
    assert dual.function_name == "my_task"
    assert dual.pid == 123
    assert dual.ip == "10.0.0.1"
    assert type(err.as_instanceof_cause()) is type(dual)  # cached per cause class
    text = str(dual)
    assert text.startswith("ember::my_task() (pid=123, ip=10.0.0.1)")
    assert type(cause).__name__ in text
    assert "Traceback (most recent" not in text
    for dumps, loads in [
        (pickle.dumps, pickle.loads),
        (cloudpickle.dumps, cloudpickle.loads),
    ]:
        back = loads(dumps(dual))
        assert type(back) is type(dual)
        assert str(back) == text
        assert isinstance(back, type(cause))
        assert back.cause.args == cause.args
    with pytest.raises(type(cause)):
        raise dual


def test_dual_delegates_cause_attributes() -> None:
    dual = _task_error(CustomError("x", 42)).as_instanceof_cause()
    assert dual.code == 42
    assert dual.errno if isinstance(dual, OSError) else True
    fnf = _task_error(FileNotFoundError(2, "missing", "/x")).as_instanceof_cause()
    assert fnf.errno == 2
    assert fnf.filename == "/x"


def test_as_instanceof_cause_falls_back_to_self() -> None:
    class Hostile(Exception):
        def __new__(cls, *args: object) -> Hostile:
            raise RuntimeError("no")

    err = ex.TaskError("f", "tb", Exception.__new__(Hostile))
    assert err.as_instanceof_cause() is err
    plain = ex.TaskError("f", "tb", Exception("x"))
    assert plain.as_instanceof_cause() is plain
    assert ex.TaskError("f", "tb", None).as_instanceof_cause().cause is None


def test_nested_task_error_keeps_innermost_cause() -> None:
    inner = _task_error(ValueError("inner"))
    outer = ex.TaskError(
        "outer", "Traceback (most recent call last):\n" + str(inner), inner
    )
    assert isinstance(outer.cause, ValueError)
    assert isinstance(outer.as_instanceof_cause(), ValueError)


def test_task_error_hides_internal_frames_and_shows_actor() -> None:
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/site/ember/worker/executor.py", line 10, in run\n'
        "    result = fn()\n"
        "             ^^^^\n"
        '  File "/home/me/app.py", line 3, in method\n'
        "    raise ValueError('x')\n"
        "ValueError: x"
    )
    err = ex.TaskError(
        "A.method",
        tb,
        ValueError("x"),
        pid=1,
        ip="h",
        actor_repr="A(1)",
        actor_id="abc",
    )
    text = str(err)
    assert "executor.py" not in text
    assert "result = fn()" not in text
    assert "app.py" in text
    assert text.endswith("ValueError: x")
    assert (
        text.splitlines()[0]
        == "ember::A.method() (pid=1, ip=h, actor_id=abc, repr=A(1))"
    )


def test_messages_are_built_from_ray_arguments() -> None:
    assert "worker died unexpectedly" in str(ex.WorkerCrashedError())
    assert str(ex.ActorDiedError()) == ex.ActorDiedError.BASE_ERROR_MSG
    assert str(ex.RayActorError()) == ex.RayActorError.BASE_ERROR_MSG
    ctx = ex.ActorDiedErrorContext(
        "killed by kill()", b"\xff\x01", "Q", pid=9, ray_namespace="ns"
    )
    died = ex.ActorDiedError(ctx)
    assert died.actor_id == "ff01"
    assert str(died).splitlines() == [
        ex.ActorDiedError.BASE_ERROR_MSG,
        "\tclass_name: Q",
        "\tactor_id: ff01",
        "\tpid: 9",
        "\tnamespace: ns",
        "killed by kill()",
    ]
    assert ex.ActorDiedError(ex.ActorDiedErrorContext(preempted=True)).preempted
    unavailable = ex.ActorUnavailableError("restarting", b"\x0a")
    assert unavailable.actor_id == "0a"
    assert str(unavailable).startswith("The actor 0a is unavailable: restarting.")
    actor = ex.RayActorError("ab", "custom", actor_init_failed=True)
    assert (actor.actor_id, str(actor), actor.actor_init_failed) == (
        "ab",
        "custom",
        True,
    )
    assert "t1" in str(ex.TaskCancelledError("t1"))
    assert "abc" in str(ex.OwnerDiedError("abc", None, ""))
    lost = ex.ObjectLostError("abc", None, "f.py:1 | g.py:2", _detail="gone")
    assert lost.call_site == "f.py:1\n  g.py:2"
    assert str(lost).endswith("\n\ngone")
    failed = ex.ObjectReconstructionFailedError("abc", "OBJECT_UNRECONSTRUCTABLE_PUT")
    assert "[OBJECT_UNRECONSTRUCTABLE_PUT]" in str(failed)
    assert "put()" in failed.reason_message
    assert "max_retries" in str(
        ex.ObjectReconstructionFailedMaxAttemptsExceededError("a")
    )
    assert str(ex.TaskUnschedulableError("x")) == "The task is not schedulable: x"
    assert str(ex.ActorUnschedulableError("x")) == "The actor is not schedulable: x"
    assert str(ex.OutOfMemoryError("low memory")) == "low memory"
    assert str(ex.NodeDiedError("node gone")) == "node gone"
    assert str(ex.RpcError("broken", 14)) == "broken"
    assert str(ex.RaySystemError("boom", "tb")) == "System error: boom\ntraceback: tb"
    died = ex.ActorDiedError.from_task_error(_task_error(ValueError("init")))
    assert died.actor_init_failed
    assert "creation task" in str(died)
    with pytest.raises(TypeError):
        ex.ActorDiedError("a string is not a cause")  # type: ignore[arg-type]


def test_ray_constructor_parameters_are_required_as_in_ray() -> None:
    for cls in (
        ex.TaskUnschedulableError,
        ex.ActorUnschedulableError,
        ex.ActorAlreadyExistsError,
        ex.ActorHandleNotFoundError,
        ex.OutOfMemoryError,
        ex.NodeDiedError,
        ex.UnserializableException,
        ex.RaySystemError,
    ):
        with pytest.raises(TypeError):
            cls()


def test_from_bytes_of_an_unpicklable_payload_keeps_the_text() -> None:
    record = ex.ExceptionRecord(ex.PYTHON, b"not a pickle", "ValueError: original")
    err = ex.RayError.from_ray_exception(record)
    assert type(err) is ex.UnserializableException
    assert "ValueError: original" in str(err)
    assert type(ex.RayError.from_bytes(record.to_bytes())) is ex.UnserializableException
    java = ex.RayError.from_ray_exception(ex.ExceptionRecord("JAVA", b"", "boom"))
    assert isinstance(java, ex.CrossLanguageError)
    assert str(java) == "An exception raised from JAVA:\nboom"
    with pytest.raises(ValueError):
        ex.RayError.from_bytes(b"garbage")


def test_to_bytes_keeps_a_task_error_usable() -> None:
    err = _task_error(KeyError("k")).as_instanceof_cause()
    back = ex.RayError.from_bytes(err.to_bytes())
    assert isinstance(back, KeyError)
    assert isinstance(back, ex.RayTaskError)
    assert str(back) == str(err)


def test_ray_exception_types_lists_rays_classes() -> None:
    names = [c.__name__ for c in ex.RAY_EXCEPTION_TYPES]
    assert len(names) == 30
    assert ex.RayError in ex.RAY_EXCEPTION_TYPES
    assert ex.ActorDiedError in ex.RAY_EXCEPTION_TYPES
    assert all(issubclass(c, ex.RayError) for c in ex.RAY_EXCEPTION_TYPES)


def test_make_dual_exception_instance_raises_when_it_cannot_combine() -> None:
    class Hostile(Exception):
        def __new__(cls, *args: object) -> Hostile:
            raise RuntimeError("no")

    err = ex.TaskError("f", "tb", Exception.__new__(Hostile))
    with pytest.raises(TypeError):
        err.make_dual_exception_instance()
    dual = _task_error(ValueError("v")).make_dual_exception_instance()
    assert isinstance(dual, ValueError)
