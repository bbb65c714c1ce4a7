"""Node labels: the built-in node-id label and the syntax of user-given labels (pure).

Labels are given at ``ember start --labels``, ``init(labels=...)`` and
``Cluster.add_node(labels=...)``; matching them is ``ember.scheduler.labels``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: The label every node carries: its hex node id (Ray's ``ray.io/node-id``).
NODE_ID_KEY = "ray.io/node-id"

_NAME = r"[a-zA-Z0-9]([a-zA-Z0-9_.-]{0,61}[a-zA-Z0-9])?"
_NAME_RE = re.compile(_NAME)
_PREFIX_RE = re.compile(rf"{_NAME}(\.{_NAME})*")


def node_labels_error(labels: Mapping[Any, Any]) -> str | None:
    """Why ``labels`` cannot be a node's labels, or None.

    Keys are ``[prefix/]name`` and values names (or empty), in Kubernetes' label
    syntax (a name: at most 63 alphanumerics, ``-``, ``_``, ``.``, starting and
    ending alphanumeric); ``ray.io/node-id`` is set by ember, not by users.
    """
    for key, value in labels.items():
        if not isinstance(key, str) or not isinstance(value, str):
            return f"node labels map str to str, got {key!r}: {value!r}"
        if key == NODE_ID_KEY:
            return f"the label {NODE_ID_KEY!r} is set by ember (the node's id)"
        prefix, _, name = key.rpartition("/")
        if "/" in key and (len(prefix) > 253 or not _PREFIX_RE.fullmatch(prefix)):
            return (
                f"invalid label key prefix {prefix!r}: it must be DNS labels "
                "separated by dots, at most 253 characters"
            )
        if not _NAME_RE.fullmatch(name):
            return (
                f"invalid label key {key!r}: the name must be at most 63 characters, "
                "alphanumerics, '-', '_' or '.', beginning and ending alphanumeric"
            )
        if value and not _NAME_RE.fullmatch(value):
            return (
                f"invalid value {value!r} of label {key!r}: at most 63 characters, "
                "alphanumerics, '-', '_' or '.', beginning and ending alphanumeric"
            )
    return None
