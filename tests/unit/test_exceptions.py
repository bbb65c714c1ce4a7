"""Tests for the public exception hierarchy in ``ember.exceptions``."""

from __future__ import annotations

import pickle
import traceback

import cloudpickle
import pytest

from ember import exceptions as ex


def _task_error(cause: BaseException) -> ex.TaskError:
    try:
        raise cause
    except BaseException:
        tb = traceback.format_exc()
    return ex.TaskError("my_task", tb, cause, pid=123, ip="10.0.0.1")


def _sample(cls: type) -> BaseException:
    if cls is ex.TaskError:
        return _task_error(ValueError("boom"))
    if issubclass(cls, ex.ObjectLostError):
        return cls("ab" * 14, "owner:1", "call site")
    if issubclass(cls, ex.ActorError):
        return cls("actor broke", "a1b2")
    if cls is ex.TaskCancelledError:
        return cls("t123")
    return cls() if str(cls()) else cls("something went wrong")


CLASSES = sorted({getattr(ex, n) for n in ex.__all__}, key=lambda c: c.__name__)


@pytest.mark.parametrize(
    ("dumps", "loads"),
    [(pickle.dumps, pickle.loads), (cloudpickle.dumps, cloudpickle.loads)],
)
@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip(cls: type, dumps, loads) -> None:
    err = _sample(cls)
    back = loads(dumps(err))
    assert type(back) is cls
    assert str(back) == str(err)
    assert str(err)
    assert vars(back) == vars(err) or isinstance(err, ex.TaskError)


def test_all_is_complete_and_exported() -> None:
    public = {
        n
        for n, v in vars(ex).items()
        if isinstance(v, type)
        and issubclass(v, BaseException)
        and not n.startswith("_")
    }
    assert public == set(ex.__all__)


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


def test_default_messages_are_actionable() -> None:
    assert "worker died unexpectedly" in str(ex.WorkerCrashedError())
    assert "max_restarts" in str(ex.ActorDiedError())
    assert ex.ActorDiedError("gone", actor_id="ff").actor_id == "ff"
    assert "t1" in str(ex.TaskCancelledError("t1"))
    assert "abc" in str(ex.OwnerDiedError("abc"))
    assert "max_retries" in str(
        ex.ObjectReconstructionFailedMaxAttemptsExceededError("a")
    )
    died = ex.ActorDiedError.from_task_error(_task_error(ValueError("init")))
    assert died.actor_init_failed
    assert "creation task" in str(died)
