"""What every state call shares: options, filters, limits, the truncation warnings.

A list call (:func:`list_resource`) checks its input here first, as Ray's
``ListApiOptions`` does: each filter is a ``(key, predicate, value)`` triple,
the predicate ``"="`` or ``"!="`` (``ValueError`` otherwise), the key a
filterable column of the resource (``RayStateApiException`` naming the
columns otherwise), and the value is read as the column's type (``"1"`` for
an int column, ``"true"`` for a bool one).  Two ``=`` filters on one key with
different values warn and return nothing.  The query then goes to the
control service with the filters and the limit, which it applies.

What comes back says how much the cluster had (``total``), how much it kept
(``num_after_truncation``: the control service keeps the last
``EMBER_TASK_EVENTS_MAX`` task attempts) and how much matched
(``num_filtered``).  Data dropped at the source raises with
``raise_on_missing_output=True`` (the default) and warns otherwise; a
result cut by ``limit`` warns with ``_explain=True`` (the CLI's table
output), as in Ray.

Modules that answer from elsewhere (objects, logs) pass their own ``fetch``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from enum import Enum, unique
from typing import Any

from ember.common.state_filters import PREDICATES, FilterValueError, as_bool
from ember.protocol.messages import ListStateReply, ListStateRequest, StateFilter
from ember.util.state.client import DEFAULT_RPC_TIMEOUT, StateClient
from ember.util.state.exception import RayStateApiException
from ember.util.state.schemas import (
    SCHEMAS,
    ActorState,
    JobState,
    NodeState,
    PlacementGroupState,
    StateSchema,
    TaskState,
    WorkerState,
)

__all__ = [
    "DEFAULT_LIMIT",
    "DEFAULT_RPC_TIMEOUT",
    "MAX_LIMIT",
    "ActorState",
    "JobState",
    "NodeState",
    "PlacementGroupState",
    "StateResource",
    "StateSchema",
    "SummaryResource",
    "TaskState",
    "WorkerState",
    "check_filters",
    "get_resource",
    "list_resource",
]

DEFAULT_LIMIT = 100
#: the most rows one call may ask for (``RAY_MAX_LIMIT_FROM_API_SERVER``)
MAX_LIMIT = int(os.environ.get("RAY_MAX_LIMIT_FROM_API_SERVER", 10_000))

SupportedFilterType = str | bool | int | float
PredicateType = str
FilterTuple = tuple[str, PredicateType, SupportedFilterType]

Fetch = Callable[[ListStateRequest, float], ListStateReply]


@unique
class StateResource(Enum):
    ACTORS = "actors"
    JOBS = "jobs"
    PLACEMENT_GROUPS = "placement_groups"
    NODES = "nodes"
    WORKERS = "workers"
    TASKS = "tasks"
    OBJECTS = "objects"
    RUNTIME_ENVS = "runtime_envs"
    CLUSTER_EVENTS = "cluster_events"


@unique
class SummaryResource(Enum):
    ACTORS = "actors"
    TASKS = "tasks"
    OBJECTS = "objects"


def check_filters(
    filters: Sequence[Any] | None, schema: type[StateSchema], resource: str
) -> list[StateFilter]:
    """The filters, checked against ``schema`` and with values of the columns' types.

    Raises:
        ValueError: a filter that is not a triple, or a predicate other than = and !=.
        RayStateApiException: a column that is not filterable, or a value that
            cannot be read as its column's type.
    """
    out: list[StateFilter] = []
    filterable = schema.filterable_columns()
    kinds = schema.column_kinds()
    for f in filters or ():
        if not isinstance(f, (tuple, list)) or len(f) != 3:
            raise ValueError(
                f"The filter {f!r} is not a (key, predicate, value) triple, e.g. "
                '("state", "=", "RUNNING").'
            )
        key, predicate, value = f
        if predicate not in PREDICATES:
            raise ValueError(
                f"Unsupported filter predicate {predicate!r}: use one of =, !=."
            )
        key = str(key).lower()
        if key not in filterable:
            raise RayStateApiException(
                f"{resource} cannot be filtered by {key!r}. Filterable columns: "
                f"{', '.join(sorted(filterable))}."
            )
        out.append(
            StateFilter(key=key, predicate=predicate, value=_typed(key, value, kinds))
        )
    return out


def _typed(key: str, value: Any, kinds: dict[str, type]) -> Any:
    kind = kinds.get(key, str)
    try:
        if kind is bool:
            return as_bool(value)
        if kind is int and not isinstance(value, bool):
            return int(value)
    except (FilterValueError, ValueError) as exc:
        raise RayStateApiException(
            f"The filter value {value!r} for {key!r} is not a {kind.__name__}."
        ) from exc
    return value


def conflicting(filters: Sequence[StateFilter]) -> bool:
    """Two ``=`` filters on one key with different values (warns: nothing can match)."""
    wanted: dict[str, Any] = {}
    for f in filters:
        if f.predicate != "=":
            continue
        if f.key in wanted and wanted[f.key] != f.value:
            warnings.warn(
                f"The filters ask for {f.key} = {wanted[f.key]!r} and {f.key} = "
                f"{f.value!r} at once; nothing can match both, so the result is empty.",
                UserWarning,
                stacklevel=4,
            )
            return True
        wanted.setdefault(f.key, f.value)
    return False


def missing_output(
    resource: str, reply: ListStateReply, raise_on_missing: bool
) -> None:
    """Data dropped at the source: raise, or warn when the caller accepts a partial answer."""
    dropped = reply.total - reply.num_after_truncation
    if dropped <= 0:
        return
    if raise_on_missing:
        raise RayStateApiException(
            f"Only {reply.num_after_truncation} of the {reply.total} {resource} the "
            f"cluster saw are still kept ({dropped} were dropped to bound its memory; "
            "EMBER_TASK_EVENTS_MAX sets how many task attempts it keeps). Pass "
            "raise_on_missing_output=False to get the partial answer."
        )
    warnings.warn(
        f"This answer may be incomplete: {dropped} of the {reply.total} {resource} "
        "the cluster saw were dropped at the source to bound its memory.",
        UserWarning,
        stacklevel=4,
    )


def limit_warning(resource: str, shown: int, matched: int) -> None:
    """The result was cut by ``limit`` (printed with ``_explain``, as Ray's CLI does)."""
    if matched > shown:
        warnings.warn(
            f"Showing {shown} of the {matched} matching {resource}: raise the limit "
            "(limit=, --limit) or narrow the query with filters (--filter) to see the "
            "rest.",
            UserWarning,
            stacklevel=4,
        )


def check_limit(limit: int) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise ValueError(f"limit must be a non-negative int, not {limit!r}.")
    if limit > MAX_LIMIT:
        raise RayStateApiException(
            f"limit={limit} is above the most one call returns ({MAX_LIMIT}); ask for "
            "fewer, or set RAY_MAX_LIMIT_FROM_API_SERVER higher."
        )
    return limit


def _control_fetch(address: str | None) -> Fetch:
    def fetch(req: ListStateRequest, timeout: float) -> ListStateReply:
        return StateClient(address).list_rows(req, timeout)

    return fetch


def list_resource(
    resource: str,
    *,
    address: str | None = None,
    filters: Sequence[Any] | None = None,
    limit: int = DEFAULT_LIMIT,
    timeout: float = DEFAULT_RPC_TIMEOUT,
    detail: bool = False,
    raise_on_missing_output: bool = True,
    _explain: bool = False,
    schema: type[StateSchema] | None = None,
    fetch: Fetch | None = None,
) -> list[Any]:
    """The rows of ``resource`` (a ``StateResource`` value) as ``schema`` objects."""
    schema = schema or SCHEMAS[resource]
    checked = check_filters(filters, schema, resource)
    limit = check_limit(limit)
    if conflicting(checked):
        return []
    req = ListStateRequest(
        resource=resource, filters=checked, limit=limit, detail=detail
    )
    reply = (fetch or _control_fetch(address))(req, timeout)
    missing_output(resource, reply, raise_on_missing_output)
    if _explain:
        limit_warning(resource, len(reply.rows), reply.num_filtered)
    return [schema.from_row(row, detail) for row in reply.rows]


def get_resource(
    resource: str,
    id: str,
    *,
    address: str | None = None,
    timeout: float = DEFAULT_RPC_TIMEOUT,
    _explain: bool = False,
    schema: type[StateSchema] | None = None,
    fetch: Fetch | None = None,
) -> list[Any]:
    """Every row whose id column is ``id``, with all columns (``get_*``)."""
    schema = schema or SCHEMAS[resource]
    if not isinstance(id, str):
        raise TypeError(f"id must be a hex string, not {type(id).__name__}")
    return list_resource(
        resource,
        address=address,
        filters=[(schema.ID_COLUMN, "=", id)],
        limit=MAX_LIMIT,
        timeout=timeout,
        detail=True,
        raise_on_missing_output=False,
        _explain=_explain,
        schema=schema,
        fetch=fetch,
    )
