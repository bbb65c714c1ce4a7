"""Collectors of the control service's tables: actors, placement groups, tasks by state.

They read the tables when scraped (a pass over the actors and groups, which
the service holds in memory anyway).  Task counts come from whoever keeps
task events: :class:`TaskCountsCollector` takes a callable returning
``{(state, name, is_retry): count}``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from ember.metrics import names
from ember.metrics.families import Families

#: ember's actor states as Ray's ``ActorTableData`` names them
_RAY_ACTOR_STATE = {"PENDING": "PENDING_CREATION"}

#: ``{(state, name, is_retry): count}``
TaskCounts = dict[tuple[str, str, bool], int]


class ActorsCollector(Collector):
    """``ember_actors{State,Name,Source="gcs"}``: actors by state and class."""

    def __init__(
        self, fam: Families, actors: Callable[[], Iterable[tuple[str, str]]]
    ) -> None:
        self._fam = fam
        #: (state, class name) of every actor the service knows
        self._actors = actors

    def collect(self) -> Iterator[Metric]:
        counts = Counter(
            (_RAY_ACTOR_STATE.get(state, state), name) for state, name in self._actors()
        )
        yield self._fam.gauge(
            names.ACTORS,
            "Actors by state and class, as the control service knows them.",
            [((s, n, "gcs"), v) for (s, n), v in sorted(counts.items())],
            labels=("State", "Name", "Source"),
        )


class PlacementGroupsCollector(Collector):
    """``ember_placement_groups{State}``."""

    def __init__(self, fam: Families, states: Callable[[], Iterable[str]]) -> None:
        self._fam = fam
        self._states = states

    def collect(self) -> Iterator[Metric]:
        counts = Counter(self._states())
        for state in ("PENDING", "CREATED", "REMOVED"):
            counts.setdefault(state, 0)
        yield self._fam.gauge(
            names.PLACEMENT_GROUPS,
            "Placement groups by state.",
            [((s,), v) for s, v in sorted(counts.items())],
            labels=("State",),
        )


class TaskCountsCollector(Collector):
    """``ember_tasks{State,Name,IsRetry}`` from the task-event counts."""

    def __init__(self, fam: Families, counts: Callable[[], TaskCounts]) -> None:
        self._fam = fam
        self._counts = counts

    def collect(self) -> Iterator[Metric]:
        rows = [
            ((state, name, "1" if retry else "0"), n)
            for (state, name, retry), n in sorted(self._counts().items())
        ]
        yield self._fam.gauge(
            names.TASKS,
            "Tasks and actor calls by state, function or method name, and whether "
            "the attempt is a retry.",
            rows,
            labels=("State", "Name", "IsRetry"),
        )
