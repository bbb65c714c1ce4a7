"""Checkpoint: a directory of files a trial or a training run saved (local filesystem)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import Any

_METADATA_FILE = ".metadata.json"


class Checkpoint:
    """A reference to a directory holding a checkpoint's files.

    Only the local filesystem is supported (``filesystem`` is ``"local"``); the
    directory is not copied until a session's ``report()`` persists it into the
    run's storage, or the user calls :meth:`to_directory`.
    """

    def __init__(self, path: str | os.PathLike[str], filesystem: Any = None) -> None:
        if filesystem not in (None, "local"):
            raise ValueError(
                "ember's Checkpoint supports the local filesystem only; pass "
                f"filesystem=None (got {filesystem!r})"
            )
        self.path = os.fspath(path)
        self.filesystem = "local"

    @classmethod
    def from_directory(cls, path: str | os.PathLike[str]) -> Checkpoint:
        """A checkpoint of the files in the directory ``path``."""
        path = os.fspath(path)
        if not os.path.isdir(path):
            raise ValueError(f"Checkpoint.from_directory: {path!r} is not a directory")
        return cls(path)

    def to_directory(self, path: str | os.PathLike[str] | None = None) -> str:
        """Copy the checkpoint's files into ``path`` (a new temp dir if None)."""
        dest = (
            os.fspath(path)
            if path is not None
            else os.path.join(
                tempfile.gettempdir(), f"checkpoint_tmp_{uuid.uuid4().hex}"
            )
        )
        os.makedirs(dest, exist_ok=True)
        if os.path.abspath(dest) != os.path.abspath(self.path):
            shutil.copytree(self.path, dest, dirs_exist_ok=True)
        return dest

    @contextlib.contextmanager
    def as_directory(self) -> Iterator[str]:
        """The checkpoint's files as a local directory (the directory itself)."""
        yield self.path

    def get_metadata(self) -> dict[str, Any]:
        """The metadata dict stored beside the files (empty if none)."""
        file = os.path.join(self.path, _METADATA_FILE)
        if not os.path.exists(file):
            return {}
        with open(file) as f:
            data: dict[str, Any] = json.load(f)
        return data

    def set_metadata(self, metadata: dict[str, Any]) -> None:
        """Replace the stored metadata (must be JSON-serializable)."""
        with open(os.path.join(self.path, _METADATA_FILE), "w") as f:
            json.dump(metadata, f)

    def update_metadata(self, metadata: dict[str, Any]) -> None:
        """Merge ``metadata`` into the stored metadata."""
        merged = self.get_metadata()
        merged.update(metadata)
        self.set_metadata(merged)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Checkpoint) and other.path == self.path

    def __hash__(self) -> int:
        return hash(self.path)

    def __repr__(self) -> str:
        return f"Checkpoint(filesystem=local, path={self.path})"
