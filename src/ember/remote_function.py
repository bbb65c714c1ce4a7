"""Ray-compatible path ``ember.remote_function``."""

from __future__ import annotations

from ember.api.remote_function import RemoteFunction as RemoteFunction

__all__ = ["RemoteFunction"]
