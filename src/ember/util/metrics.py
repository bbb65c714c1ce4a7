"""User metrics (``ray.util.metrics``): Counter, Gauge and Histogram, exported by the process's node.

Records are aggregated in the process (:class:`ember.metrics.user_points.PointBuffer`)
and, while the process has a core worker (a driver after ``init()``, every
task and actor), pushed to its node daemon once a second
(``node.report_metrics``), which exports them as ``ember_<name>`` (Ray:
``ray_<name>``; a Counter as ``ember_<name>_total``) with ``SessionName``
and ``NodeAddress`` besides the metric's own tags.  Records in the last
second before a process exits may be lost.  ``EMBER_METRICS=0`` drops every
record (the arguments are still checked).

The constructors, methods and errors are Ray 2.60's: an invalid name warns
and the metric records nothing, an empty name or a ``tag_keys`` that is not a
tuple of str raises, every tag key needs a value at record time.
"""

from __future__ import annotations

import re
import threading
import warnings
import weakref
from typing import Any

from ember.metrics.names import enabled
from ember.metrics.user_points import PointBuffer, Tags
from ember.protocol.messages import ReportMetricsRequest
from ember.rpc.errors import RpcError
from ember.runtime import current

__all__ = ["Counter", "Gauge", "Histogram"]

_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
#: seconds between two reports of a process to its node
REPORT_INTERVAL_S = 1.0

_BUFFER = PointBuffer()
_ON = enabled()


class _Reporter:
    """Drains the buffer into ``node.report_metrics`` on the core worker's loop."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        #: the core worker reporting now (weak: a shut-down one is not kept alive)
        self._worker: weakref.ref[Any] | None = None

    def _current(self) -> Any:
        return self._worker() if self._worker is not None else None

    def ensure(self) -> None:
        """Start reporting through the current core worker (once per core worker)."""
        cw = current.worker_or_none()
        if cw is None or cw is self._current():
            return
        with self._lock:
            if cw is self._current():
                return
            self._worker = weakref.ref(cw)
        cw.links.loop_thread.call(self._schedule, cw)

    def _schedule(self, cw: Any) -> None:
        cw.links.loop.call_later(REPORT_INTERVAL_S, self._report, weakref.ref(cw))

    def _report(self, ref: weakref.ref[Any]) -> None:
        cw = ref()
        if cw is None or cw is not self._current() or cw.links.shutting_down:
            return
        conn = cw.links.node_conn
        if conn is not None and not conn.is_closed():
            points = _BUFFER.drain()
            if points:
                try:
                    conn.notify(
                        "node.report_metrics", ReportMetricsRequest(points=points)
                    )
                except RpcError:  # the node went away: keep them for the next one
                    _BUFFER.put_back(points)
        self._schedule(cw)


_REPORTER = _Reporter()


def _valid_name(name: str) -> bool:
    """Ray's rule: an empty name raises; an invalid one warns and records nothing."""
    if len(name) == 0:
        raise ValueError("Empty name is not allowed. Please provide a metric name.")
    if not _NAME.match(name):
        warnings.warn(
            f"Invalid metric name: {name}. Metric will be discarded and data will not "
            "be collected or published. Metric names can only contain letters, "
            "numbers, _, and :. Metric names cannot start with numbers.",
            UserWarning,
            stacklevel=3,
        )
        return False
    return True


class Metric:
    """What Counter, Gauge and Histogram share: name, tag keys, default tags."""

    _kind = ""

    def __init__(
        self,
        name: str,
        description: str = "",
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        self._discard_metric = not _valid_name(name)
        self._name = name
        self._description = description
        self._default_tags: dict[str, str] = {}
        self._tag_keys: tuple[str, ...] = tag_keys or ()
        if not isinstance(self._tag_keys, tuple):
            raise TypeError(
                f"tag_keys should be a tuple type, got: {type(self._tag_keys)}"
            )
        for key in self._tag_keys:
            if not isinstance(key, str):
                raise TypeError(f"Tag keys must be str, got {type(key)}.")
        if ":" in name:
            warnings.warn(
                f"Metric name {name} contains a : character, which is no longer "
                "allowed. Please migrate to the new metric name format. This will be "
                "an error in the future.",
                FutureWarning,
                stacklevel=2,
            )

    def _define(self, boundaries: tuple[float, ...] = ()) -> None:
        if not self._discard_metric:
            _BUFFER.define(self._name, self._kind, self._description, boundaries)

    def set_default_tags(self, default_tags: dict[str, str]) -> Metric:
        """Tags used by every record unless it names them itself; returns ``self``."""
        for key, value in default_tags.items():
            if key not in self._tag_keys:
                raise ValueError(f"Unrecognized tag key {key}.")
            if not isinstance(value, str):
                raise TypeError(f"Tag values must be str, got {type(value)}.")
        self._default_tags = default_tags
        return self

    def _tags(self, tags: dict[str, str] | None) -> Tags:
        if tags:
            for value in tags.values():
                if not isinstance(value, str):
                    raise TypeError(f"Tag values must be str, got {type(value)}.")
            final = {**self._default_tags, **tags}
        else:
            final = self._default_tags
        missing = [k for k in self._tag_keys if k not in final]
        if missing:
            raise ValueError(f"Missing value for tag key(s): {','.join(missing)}.")
        return tuple(sorted(final.items()))

    def _final_tags(self, tags: dict[str, str] | None) -> Tags | None:
        """The record's tags, checked; None when nothing is to be recorded."""
        if self._discard_metric:
            return None
        final = self._tags(tags)
        if not _ON:
            return None
        _REPORTER.ensure()
        return final

    @property
    def info(self) -> dict[str, Any]:
        """The metric's name, description, tag keys and default tags."""
        return {
            "name": self._name,
            "description": self._description,
            "tag_keys": self._tag_keys,
            "default_tags": self._default_tags,
        }


class Counter(Metric):
    """A cumulative count that only goes up (a Prometheus counter, ``ember_<name>_total``)."""

    _kind = "counter"

    def __init__(
        self,
        name: str,
        description: str = "",
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, description, tag_keys)
        self._define()

    def __reduce__(self) -> tuple[Any, ...]:
        return self.__class__, (self._name, self._description, self._tag_keys)

    def inc(self, value: int | float = 1.0, tags: dict[str, str] | None = None) -> None:
        """Add ``value`` (> 0, default 1) to the count of ``tags``' series."""
        if not isinstance(value, int | float):
            raise TypeError(f"value must be int or float, got {type(value)}.")
        if value <= 0:
            raise ValueError(f"value must be >0, got {value}")
        final = self._final_tags(tags)
        if final is not None:
            _BUFFER.inc(self._name, final, float(value))


class Gauge(Metric):
    """The last value set (it may go up and down)."""

    _kind = "gauge"

    def __init__(
        self,
        name: str,
        description: str = "",
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, description, tag_keys)
        self._define()

    def __reduce__(self) -> tuple[Any, ...]:
        return Gauge, (self._name, self._description, self._tag_keys)

    def set(
        self, value: int | float | None, tags: dict[str, str] | None = None
    ) -> None:
        """Set the gauge of ``tags``' series to ``value`` (None: do nothing)."""
        if value is None:
            return
        if not isinstance(value, int | float):
            raise TypeError(f"value must be int or float, got {type(value)}.")
        final = self._final_tags(tags)
        if final is not None:
            _BUFFER.set(self._name, final, float(value))


class Histogram(Metric):
    """Counts of observed values per bucket (bounds: ``boundaries``), with their sum."""

    _kind = "histogram"

    def __init__(
        self,
        name: str,
        description: str = "",
        boundaries: list[float] | None = None,
        tag_keys: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__(name, description, tag_keys)
        if boundaries is None or len(boundaries) == 0:
            raise ValueError(
                "boundaries argument should be provided when using the Histogram "
                'class. e.g., Histogram("name", boundaries=[1.0, 2.0])'
            )
        for i, bound in enumerate(boundaries):
            if bound <= 0:
                raise ValueError(
                    f"Invalid `boundaries` argument at index {i}, {boundaries}. Use "
                    "positive values for the arguments."
                )
        self.boundaries = boundaries
        self._define(tuple(sorted(float(b) for b in boundaries)))

    def __reduce__(self) -> tuple[Any, ...]:
        return Histogram, (
            self._name,
            self._description,
            self.boundaries,
            self._tag_keys,
        )

    def observe(self, value: int | float, tags: dict[str, str] | None = None) -> None:
        """Count ``value`` in its bucket of ``tags``' series."""
        if not isinstance(value, int | float):
            raise TypeError(f"value must be int or float, got {type(value)}.")
        final = self._final_tags(tags)
        if final is not None:
            _BUFFER.observe(self._name, final, float(value))

    @property
    def info(self) -> dict[str, Any]:
        """As :attr:`Metric.info`, with the boundaries."""
        return {**super().info, "boundaries": self.boundaries}
