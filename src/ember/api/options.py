"""Validation tables for ``@remote(...)`` and ``.options(...)`` keywords.

Each option is one row: the types it accepts, an optional value check and its
default. Errors follow Ray 2.60: an unknown keyword is a ``ValueError`` that
lists the valid ones, a wrong type is a ``TypeError``, a bad value is a
``ValueError``. Every message names the keyword and says what to pass instead.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ember.api.validation import (
    MAX_CONCURRENCY,
    MAX_COUNT,
    MAX_NAME_LENGTH,
    MAX_NUM_RETURNS,
    amount_error,
    check_resource_name,
    check_runtime_env,
)

__all__ = [
    "ACTOR_OPTION_DEFAULTS",
    "TASK_OPTION_DEFAULTS",
    "resolve_num_returns",
    "update_options",
    "validate_actor_options",
    "validate_method_options",
    "validate_task_options",
]

_NoneType = type(None)
_NUMBER = (int, float, _NoneType)
_RESOURCE_PRECISION = 10_000  # resource amounts are fixed point with 4 decimals
_LABEL = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_LABEL_VALUE_RE = re.compile(rf"!?(in\({_LABEL}(, ?{_LABEL})*\)|{_LABEL})?")
_LABEL_PREFIX_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")

Check = Callable[[str, Any], "str | None"]


@dataclass(frozen=True)
class _Option:
    types: tuple[type, ...] = ()
    check: Check | None = None
    default: Any = None

    def validate(self, key: str, value: Any) -> None:
        if self.types and not isinstance(value, self.types):
            expected = " or ".join(
                "None" if t is _NoneType else t.__name__ for t in self.types
            )
            raise TypeError(
                f"The type of keyword '{key}' must be {expected}, "
                f"but received {type(value).__name__} ({value!r})."
            )
        if self.check is not None and (message := self.check(key, value)):
            raise ValueError(message)


def _amount_error(key: str, value: Any) -> str | None:
    if message := amount_error(key, value):
        return message
    if (
        isinstance(value, float)
        and value != 0
        and int(value * _RESOURCE_PRECISION) == 0
    ):
        return f"The fractional quantity of resource '{key}' cannot be finer than 0.0001 (got {value})."
    return None


def _resource(default: Any = None) -> _Option:
    return _Option(
        _NUMBER, lambda k, v: None if v is None else _amount_error(k, v), default
    )


def _count(infinite: bool, default: Any = None, high: int = MAX_COUNT) -> _Option:
    low = -1 if infinite else 0

    def check(key: str, value: Any) -> str | None:
        if value is not None and value > high:
            return f"The keyword '{key}' is {value}; the limit is {high}."
        if value is None or value >= low:
            return None
        allowed = (
            "None, 0, a positive integer, or -1 for infinity"
            if infinite
            else "None, 0 or a positive integer"
        )
        return f"The keyword '{key}' only accepts {allowed}; got {value}."

    return _Option((int, _NoneType), check, default)


def _one_of(*allowed: object) -> Check:
    def check(key: str, value: Any) -> str | None:
        if value in allowed:
            return None
        return f"The keyword '{key}' must be one of {', '.join(map(repr, allowed))}; got {value!r}."

    return check


def _resources(key: str, value: dict[Any, Any] | None) -> str | None:
    for name, amount in (value or {}).items():
        check_resource_name(f"'{key}'", name)
        if name in ("CPU", "GPU", "memory"):
            option = {"CPU": "num_cpus", "GPU": "num_gpus"}.get(name, "memory")
            return f"Use the '{option}' keyword instead of '{name}' in the '{key}' keyword."
        if message := _amount_error(name, amount):
            return message
    return None


def _num_returns(key: str, value: Any) -> str | None:
    if value is None or value in ("streaming", "dynamic"):
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        if value > MAX_NUM_RETURNS:
            return (
                f"The keyword '{key}' is {value}; the limit is {MAX_NUM_RETURNS} "
                "returns per call. Return one list instead, or use a generator."
            )
        return None
    return (
        f"The keyword '{key}' only accepts None, a non-negative integer, 'streaming' "
        f"(for generators) or 'dynamic'; got {value!r}. None means 1, or 'streaming' "
        "for generator functions."
    )


def _name(key: str, value: Any) -> str | None:
    if value is not None and len(value) > MAX_NAME_LENGTH:
        return f"The keyword '{key}' is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}."
    return None


def _runtime_env(key: str, value: Any) -> str | None:
    check_runtime_env(value, key)
    return None


def _retry_exceptions(key: str, value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if all(isinstance(e, type) and issubclass(e, Exception) for e in value):
        return None
    return f"The keyword '{key}' must be a bool or a list of Exception subclasses; got {value!r}."


def _scheduling_strategy(key: str, value: Any) -> str | None:
    if value is None or value in ("DEFAULT", "SPREAD"):
        return None
    if isinstance(value, str):
        return f"Invalid {key} value {value!r}. Use 'DEFAULT', 'SPREAD' or a *SchedulingStrategy object."
    if not type(value).__name__.endswith("SchedulingStrategy"):
        raise TypeError(
            f"The type of keyword '{key}' must be None, str or a *SchedulingStrategy "
            f"object, but received {type(value).__name__}."
        )
    pg = getattr(value, "placement_group", None)
    if pg is not None and not type(pg).__name__.endswith("PlacementGroup"):
        raise TypeError(
            f"placement_group of '{key}' must be a PlacementGroup or None, but "
            f"received {type(pg).__name__}."
        )
    index = getattr(value, "placement_group_bundle_index", -1)
    if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
        raise TypeError(
            f"placement_group_bundle_index of '{key}' must be an int, but received "
            f"{type(index).__name__} ({index!r})."
        )
    soft = getattr(value, "soft", False)
    if type(value).__name__ == "NodeLabelSchedulingStrategy":
        return None  # its hard/soft expressions were checked by its constructor
    if not isinstance(soft, bool):
        raise TypeError(
            f"'soft' of '{key}' must be a bool, but received {type(soft).__name__}."
        )
    node_id = getattr(value, "node_id", "")
    if not isinstance(node_id, str) or len(node_id) > MAX_NAME_LENGTH:
        raise TypeError(f"'node_id' of '{key}' must be a hex str, got {node_id!r}.")
    return None


def _placement_group(key: str, value: Any) -> str | None:
    if (
        value is None
        or isinstance(value, str)
        or type(value).__name__.endswith("PlacementGroup")
    ):
        return None
    raise TypeError(
        f"The type of keyword '{key}' must be None, 'default' or a PlacementGroup, "
        f"but received {type(value).__name__}."
    )


def _label_selector(key: str, value: dict[Any, Any] | None) -> str | None:
    for label, selector in (value or {}).items():
        if not isinstance(label, str) or not isinstance(selector, (str, _NoneType)):
            raise TypeError(
                f"'{key}' must map str label keys to str values; got {label!r}: {selector!r}."
            )
        prefix, _, name = label.rpartition("/")
        bad_prefix = "/" in label and (
            len(prefix) > 253 or not _LABEL_PREFIX_RE.fullmatch(prefix)
        )
        if bad_prefix or len(name) > 63 or not re.fullmatch(_LABEL, name):
            return (
                f"Invalid label key {label!r} in '{key}'. A key is an optional DNS prefix and "
                "'/', then at most 63 alphanumerics, '-', '_' or '.', starting and ending "
                "with an alphanumeric."
            )
        if selector and not _LABEL_VALUE_RE.fullmatch(selector):
            return (
                f"Invalid label selector value {selector!r} in '{key}'. Use 'value', "
                "'!value', 'in(a, b)' or '!in(a, b)'."
            )
    return None


def _fallback_strategy(key: str, value: list[Any] | None) -> str | None:
    for entry in value or []:
        if not isinstance(entry, dict) or not entry:
            return f"Each element of '{key}' must be a non-empty dict; got {entry!r}."
        if extra := set(entry) - {"label_selector"}:
            return (
                f"'{key}' entries only support 'label_selector'; got {sorted(extra)}."
            )
        if message := _label_selector("label_selector", entry["label_selector"]):
            return message
    return None


def _concurrency_groups(key: str, value: Any) -> str | None:
    if isinstance(value, dict):
        for group, limit in value.items():
            if not isinstance(group, str) or not isinstance(limit, int) or limit < 1:
                return f"'{key}' must map group names to a positive int limit; got {group!r}: {limit!r}."
    return None


def _not_zero(key: str, value: Any) -> str | None:
    if value == 0:
        return (
            f"{key}=0 is not allowed. Use a value > 0, or -1 to disable backpressure."
        )
    return None


def _positive_or_disabled(key: str, value: Any) -> str | None:
    if value is None or value > 0 or value == -1:
        return None
    return f"{key} must be > 0, or -1 to disable; got {value}."


_COMMON: dict[str, _Option] = {
    "accelerator_type": _Option((str, _NoneType)),
    "enable_task_events": _Option((bool,), default=True),
    "fallback_strategy": _Option((list, _NoneType), _fallback_strategy),
    "label_selector": _Option((dict, _NoneType), _label_selector),
    "memory": _resource(),
    "name": _Option((str, _NoneType), _name),
    "num_cpus": _resource(),
    "num_gpus": _resource(),
    "object_store_memory": _count(infinite=False, high=2**63 - 1),
    "placement_group": _Option((), _placement_group, "default"),
    "placement_group_bundle_index": _Option((int,), _count(True).check, -1),
    "placement_group_capture_child_tasks": _Option((bool, _NoneType)),
    "resources": _Option((dict, _NoneType), _resources),
    "runtime_env": _Option((dict, _NoneType), _runtime_env),
    "scheduling_strategy": _Option((), _scheduling_strategy),
    "_labels": _Option((dict, _NoneType)),
    "_metadata": _Option((dict, _NoneType)),
}

_TASK_ONLY: dict[str, _Option] = {
    "max_calls": _count(infinite=False, default=0),
    "max_retries": _count(infinite=True, default=3),
    "num_cpus": _resource(default=1),
    "num_returns": _Option((int, str, _NoneType), _num_returns),
    "object_store_memory": _Option(
        (int, _NoneType),
        lambda k, v: (
            None
            if v is None
            else "Setting 'object_store_memory' is not implemented for tasks."
        ),
    ),
    "retry_exceptions": _Option((bool, list, tuple), _retry_exceptions, False),
    "_generator_backpressure_num_objects": _Option((int, _NoneType), _not_zero),
    "_num_objects_per_yield": _Option((int, _NoneType), _positive_or_disabled, 1),
}

_ACTOR_ONLY: dict[str, _Option] = {
    "allow_out_of_order_execution": _Option((bool, _NoneType)),
    "concurrency_groups": _Option((list, dict, _NoneType), _concurrency_groups),
    "enable_tensor_transport": _Option((bool, _NoneType)),
    "get_if_exists": _Option((bool,), default=False),
    "lifetime": _Option((str, _NoneType), _one_of(None, "detached", "non_detached")),
    "max_concurrency": _count(infinite=False, high=MAX_CONCURRENCY),
    "max_pending_calls": _count(infinite=True, default=-1),
    "max_restarts": _count(infinite=True, default=0),
    "max_task_retries": _count(infinite=True, default=0),
    "namespace": _Option((str, _NoneType), _name),
    "_actor_generator_backpressure_num_objects": _Option(
        (int, _NoneType), _positive_or_disabled
    ),
}

_METHOD_OPTIONS: dict[str, _Option] = {
    "num_returns": _TASK_ONLY["num_returns"],
    "name": _COMMON["name"],
    "max_task_retries": _count(infinite=True),
    "retry_exceptions": _TASK_ONLY["retry_exceptions"],
    "concurrency_group": _Option((str, _NoneType), _name),
    "enable_task_events": _COMMON["enable_task_events"],
    "_generator_backpressure_num_objects": _TASK_ONLY[
        "_generator_backpressure_num_objects"
    ],
    "tensor_transport": _Option((str, _NoneType)),
}

_TASK_OPTIONS = {**_COMMON, **_TASK_ONLY}
_ACTOR_OPTIONS = {**_COMMON, **_ACTOR_ONLY}

#: Defaults for remote functions. ``num_returns=None`` means 1, or
#: ``"streaming"`` for generator functions (see :func:`resolve_num_returns`).
TASK_OPTION_DEFAULTS: dict[str, Any] = {k: o.default for k, o in _TASK_OPTIONS.items()}
#: Defaults for actors. ``num_cpus=None`` means "1 CPU to place, 0 to run".
ACTOR_OPTION_DEFAULTS: dict[str, Any] = {
    k: o.default for k, o in _ACTOR_OPTIONS.items()
}


def _check_keywords(
    options: dict[str, Any], table: dict[str, _Option], kind: str
) -> None:
    for key, value in options.items():
        option = table.get(key)
        if option is None:
            hint = ""
            if kind == "actors" and key in _TASK_ONLY:
                hint = f" '{key}' applies to remote functions; for actor methods use @method(...)."
            elif kind == "remote functions" and key in _ACTOR_ONLY:
                hint = f" '{key}' applies only to actors (decorated classes)."
            raise ValueError(
                f"Invalid option keyword '{key}' for {kind}.{hint} Valid ones are {sorted(table)}."
            )
        option.validate(key, value)


def _check_placement_group(options: dict[str, Any]) -> None:
    if options.get("placement_group", "default") not in ("default", None) and (
        options.get("scheduling_strategy") is not None
    ):
        raise ValueError(
            "Pass either 'placement_group' or 'scheduling_strategy', not both. The "
            "'placement_group' option is deprecated: use "
            "scheduling_strategy=PlacementGroupSchedulingStrategy(...)."
        )


def validate_task_options(
    options: dict[str, Any], in_options: bool, *, is_generator: bool | None = None
) -> None:
    """Check ``@remote(...)`` (``in_options=False``) or ``.options(...)`` keywords
    for a remote function; ``is_generator`` (if known) also checks ``num_returns``."""
    _check_keywords(options, _TASK_OPTIONS, "remote functions")
    if in_options and "max_calls" in options:
        raise ValueError(
            "Setting 'max_calls' is not supported in '.options()'; pass it to @remote(...)."
        )
    _check_placement_group(options)
    num_returns = options.get("num_returns")
    if is_generator is False and num_returns in ("streaming", "dynamic"):
        raise ValueError(
            f"num_returns={num_returns!r} can only be used with generator functions "
            "(functions that use 'yield'). Remove it or make the function yield."
        )


def validate_actor_options(options: dict[str, Any], in_options: bool) -> None:
    """Check ``@remote(...)`` (``in_options=False``) or ``.options(...)`` keywords
    for an actor class."""
    _check_keywords(options, _ACTOR_OPTIONS, "actors")
    if in_options and "concurrency_groups" in options:
        raise ValueError(
            "Setting 'concurrency_groups' is not supported in '.options()'; pass it to @remote(...)."
        )
    if options.get("name") == "":
        raise ValueError(
            "Actor name cannot be an empty string; pass a non-empty name or None."
        )
    if options.get("namespace") == "":
        raise ValueError(
            '"" is not a valid namespace. Pass None to use the current namespace.'
        )
    if options.get("get_if_exists") and not options.get("name"):
        raise ValueError(
            "The actor name must be specified to use `get_if_exists`; pass name=..."
        )
    if options.get("object_store_memory") is not None:
        warnings.warn(
            "Setting 'object_store_memory' for actors is deprecated: it does not reserve "
            "object store memory. Rely on object spilling instead.",
            DeprecationWarning,
            stacklevel=3,
        )
    _check_placement_group(options)


def validate_method_options(options: dict[str, Any], where: str) -> None:
    """Check the keywords of ``@method(...)`` or ``actor.method.options(...)``."""
    for key, value in options.items():
        option = _METHOD_OPTIONS.get(key)
        if option is None:
            raise ValueError(
                f"Invalid option keyword '{key}' for {where}. Valid ones are "
                f"{sorted(_METHOD_OPTIONS)}."
            )
        option.validate(key, value)


def update_options(original: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Return ``original`` overlaid with ``new`` (a shallow copy; inputs untouched)."""
    return {**original, **new}


def resolve_num_returns(num_returns: int | str | None, is_generator: bool) -> int | str:
    """Turn the ``num_returns`` option into its effective value (None -> 1 or 'streaming')."""
    if num_returns is None:
        return "streaming" if is_generator else 1
    return num_returns


def max_calls_of(options: dict[str, Any]) -> int:
    """The effective ``max_calls`` of a task: as given, else 1 for a task that uses
    GPUs (its worker is not reused, as in Ray) and 0 (unlimited) otherwise."""
    max_calls = options.get("max_calls")
    if max_calls is None:
        return 1 if options.get("num_gpus") else 0
    return int(max_calls)


def system_config_overrides(
    system_config: dict[str, Any] | None, known: Iterable[str]
) -> dict[str, Any]:
    """The ``init(_system_config=...)`` entries ember uses (the names in ``known``).

    Ray takes many internal keys there (spilling, timeouts, ...). A program that
    sets one that ember has no use for still runs: the key is skipped with a
    warning that names it.

    Raises:
        TypeError: ``system_config`` is not a dict with string keys.
    """
    if system_config is None:
        return {}
    if not isinstance(system_config, dict) or not all(
        isinstance(k, str) for k in system_config
    ):
        raise TypeError(
            "_system_config must be a dict with string keys; got "
            f"{type(system_config).__name__}."
        )
    names = set(known)
    unused = sorted(k for k in system_config if k not in names)
    if unused:
        warnings.warn(
            f"_system_config keys {unused} are not used by ember and are ignored.",
            UserWarning,
            stacklevel=3,
        )
    return {k: v for k, v in system_config.items() if k in names}


def concurrency_groups_of(options: dict[str, Any]) -> dict[str, int]:
    """The actor's concurrency groups as ``{name: limit}`` (a list names groups of 1)."""
    groups = options.get("concurrency_groups") or {}
    if isinstance(groups, list):
        return {str(g): 1 for g in groups}
    return {str(g): int(n) for g, n in groups.items()}
