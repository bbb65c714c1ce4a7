"""Rotating the log files a process writes through its stdout and stderr.

Every worker's stdout/stderr and every daemon's log are plain files under
``<session>/logs`` that the parent opened (0600) and handed down as file
descriptors 1 and 2, so that output of C code, of ``print`` and of a crash all
land there without a thread or a pipe in between. Rotation therefore happens
in the writing process itself: when the file behind a descriptor has reached
``EMBER_LOG_ROTATION_MAX_BYTES`` (Ray's ``RAY_ROTATION_MAX_BYTES``; 512 MiB
by default), :meth:`StdRotator.check` renames it to ``<name>.1`` (shifting
older backups up to ``EMBER_LOG_ROTATION_BACKUP_COUNT``, 5 by default, and
dropping the oldest), opens a fresh ``<name>`` (0600) and ``dup2``s it onto
the descriptor. The size is checked with one ``fstat`` when a line is
written (the log stream of a worker, a daemon's logging records).

``max_bytes <= 0`` turns rotation off; ``backup_count <= 0`` keeps no
backup (the file starts over empty).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import threading

from ember.common.private_files import open_private_log

MAX_BYTES_VARS = ("EMBER_LOG_ROTATION_MAX_BYTES", "RAY_ROTATION_MAX_BYTES")
BACKUP_COUNT_VARS = ("EMBER_LOG_ROTATION_BACKUP_COUNT", "RAY_ROTATION_BACKUP_COUNT")
#: Ray's defaults (``LOGGING_ROTATE_BYTES``, ``LOGGING_ROTATE_BACKUP_COUNT``)
DEFAULT_MAX_BYTES = 512 * 1024 * 1024
DEFAULT_BACKUP_COUNT = 5


class LogRotationConfigError(ValueError):
    """A rotation knob in the environment is not an integer."""


def _env_int(names: tuple[str, ...], default: int) -> int:
    for name in names:
        raw = os.environ.get(name, "").strip()
        if raw:
            try:
                return int(raw)
            except ValueError:
                raise LogRotationConfigError(
                    f"{name}={raw!r} is not an integer (bytes or a count)"
                ) from None
    return default


@dataclasses.dataclass(frozen=True)
class RotationSettings:
    """When a log file is rotated and how many old ones are kept."""

    max_bytes: int = DEFAULT_MAX_BYTES
    backup_count: int = DEFAULT_BACKUP_COUNT

    @classmethod
    def from_env(cls) -> RotationSettings:
        """``EMBER_LOG_ROTATION_*`` (or Ray's ``RAY_ROTATION_*``), else Ray's defaults."""
        return cls(
            max_bytes=_env_int(MAX_BYTES_VARS, DEFAULT_MAX_BYTES),
            backup_count=_env_int(BACKUP_COUNT_VARS, DEFAULT_BACKUP_COUNT),
        )

    @property
    def enabled(self) -> bool:
        return self.max_bytes > 0


def backup_name(path: str, n: int) -> str:
    """The name of the ``n``-th backup of ``path`` (1 is the newest)."""
    return f"{path}.{n}"


def shift_backups(path: str, backup_count: int) -> None:
    """``path`` -> ``path.1``, ``path.1`` -> ``path.2``, ...; the oldest is dropped."""
    if backup_count <= 0:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)
        return
    with contextlib.suppress(FileNotFoundError):
        os.unlink(backup_name(path, backup_count))
    for n in range(backup_count - 1, 0, -1):
        with contextlib.suppress(FileNotFoundError):
            os.rename(backup_name(path, n), backup_name(path, n + 1))
    with contextlib.suppress(FileNotFoundError):
        os.rename(path, backup_name(path, 1))


def fd_path(fd: int) -> str | None:
    """The file behind descriptor ``fd`` if it is a regular file (Linux), else None."""
    try:
        path = os.readlink(f"/proc/self/fd/{fd}")
        st = os.fstat(fd)
    except OSError:
        return None
    if not stat.S_ISREG(st.st_mode) or not os.path.isabs(path):
        return None
    return path


class StdRotator:
    """Rotates the files behind some of this process's descriptors (1, 2, ...)."""

    def __init__(self, settings: RotationSettings | None = None) -> None:
        self.settings = settings or RotationSettings.from_env()
        #: descriptor -> the path it writes (several descriptors may share one)
        self.paths: dict[int, str] = {}
        self._lock = threading.Lock()

    def watch(self, fd: int, path: str | None = None) -> None:
        """Rotate the file behind ``fd`` (named ``path``, else found through /proc)."""
        path = path or fd_path(fd)
        if path is not None:
            self.paths[fd] = path

    def check(self) -> bool:
        """Rotate every watched file that reached the limit; whether one was."""
        if not self.settings.enabled or not self.paths:
            return False
        rotated = False
        for fd, path in list(self.paths.items()):
            try:
                size = os.fstat(fd).st_size
            except OSError:
                continue
            if size >= self.settings.max_bytes:
                rotated = self._rotate(path) or rotated
        return rotated

    def _rotate(self, path: str) -> bool:
        with self._lock:
            fds = [fd for fd, p in self.paths.items() if p == path]
            try:
                if not fds or os.fstat(fds[0]).st_size < self.settings.max_bytes:
                    return False  # another thread rotated it meanwhile
                shift_backups(path, self.settings.backup_count)
                new = open_private_log(path)
            except OSError:
                return (
                    False  # the folder went away (shutdown): keep writing the old file
                )
            try:
                for fd in fds:
                    os.dup2(new, fd, inheritable=True)
            finally:
                os.close(new)
            return True

    def rename(self, old: str, new: str) -> None:
        """The file ``old`` was renamed to ``new`` (its backups go with the new name)."""
        for fd, p in self.paths.items():
            if p == old:
                self.paths[fd] = new


_process_rotator: StdRotator | None = None


def process_rotator() -> StdRotator:
    """This process's one rotator (the logging setup and the log stream share it)."""
    global _process_rotator
    if _process_rotator is None:
        _process_rotator = StdRotator()
    return _process_rotator
