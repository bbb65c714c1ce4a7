"""Packing a working_dir or py_modules entry into one zip, named by its content.

A folder is zipped with its files in sorted order and fixed timestamps, so
the same content always gives the same bytes and the same URI
(``gcs://_ember_pkg_<sha256>.zip``): a second ``init()`` with an unchanged
folder uploads nothing. Files are left out when they match the env's
``excludes`` (gitignore patterns, relative to the folder) or a
``.gitignore`` / ``.rayignore`` found in the folder or below (patterns
relative to that file's folder; ``EMBER_RUNTIME_ENV_IGNORE_GITIGNORE=1``
turns ``.gitignore`` off, as Ray's variable does). A package may not exceed
``max_package_bytes()`` (512 MiB; ``EMBER_RUNTIME_ENV_MAX_PACKAGE_BYTES``):
the error says how to make it smaller.

Unpacking (:func:`unpack`) is what a node does with a fetched package; it
refuses members that would land outside the target folder.
"""

from __future__ import annotations

import hashlib
import io
import os
import stat
import zipfile
from collections.abc import Callable
from pathlib import Path

import pathspec

from ember.runtime_env.fields import PACKAGE_SCHEME

PREFIX = "_ember_pkg_"
DEFAULT_MAX_PACKAGE_BYTES = 512 * 1024 * 1024
_EPOCH = (1980, 1, 1, 0, 0, 0)


def max_package_bytes() -> int:
    return int(
        os.environ.get("EMBER_RUNTIME_ENV_MAX_PACKAGE_BYTES", DEFAULT_MAX_PACKAGE_BYTES)
    )


class PackageTooLargeError(ValueError):
    """A working_dir or py_modules package is over the size limit."""


def _mib(n: int) -> str:
    return f"{n / (1024 * 1024):.2f}MiB"


def _too_large(what: str, size: int, limit: int) -> PackageTooLargeError:
    return PackageTooLargeError(
        f"Package size ({_mib(size)}) of {what} exceeds the maximum size of "
        f"{_mib(limit)}. To exclude large files, add them to '.gitignore' or "
        "'.rayignore' files, or use the 'excludes' option in the runtime_env."
    )


def _ignore_file(folder: Path, name: str) -> pathspec.PathSpec | None:
    f = folder / name
    if not f.is_file():
        return None
    return pathspec.GitIgnoreSpec.from_lines(f.read_text().splitlines())


def _matchers(
    root: Path, excludes: list[str]
) -> tuple[pathspec.PathSpec, Callable[[Path], list[tuple[Path, pathspec.PathSpec]]]]:
    spec = pathspec.GitIgnoreSpec.from_lines(excludes)
    use_gitignore = os.environ.get("EMBER_RUNTIME_ENV_IGNORE_GITIGNORE", "0") != "1"

    def local(folder: Path) -> list[tuple[Path, pathspec.PathSpec]]:
        names = [".rayignore"] + ([".gitignore"] if use_gitignore else [])
        found = [_ignore_file(folder, n) for n in names]
        return [(folder, s) for s in found if s is not None]

    return spec, local


def _files(root: Path, excludes: list[str]) -> list[tuple[Path, str]]:
    """(path, name in the zip relative to root) of every file kept, sorted."""
    spec, local = _matchers(root, excludes)
    out: list[tuple[Path, str]] = []

    def excluded(p: Path, ignores: list[tuple[Path, pathspec.PathSpec]]) -> bool:
        rel = p.relative_to(root).as_posix()
        suffix = "/" if p.is_dir() else ""
        if spec.match_file(rel + suffix) or spec.match_file(rel):
            return True
        for base, s in ignores:
            r = p.relative_to(base).as_posix()
            if s.match_file(r + suffix) or s.match_file(r):
                return True
        return False

    def walk(folder: Path, ignores: list[tuple[Path, pathspec.PathSpec]]) -> None:
        ignores = ignores + local(folder)
        for entry in sorted(folder.iterdir(), key=lambda e: e.name):
            if excluded(entry, ignores):
                continue
            if entry.is_symlink() and not entry.exists():
                continue
            if entry.is_dir():
                walk(entry, ignores)
            elif entry.is_file():
                out.append((entry, entry.relative_to(root).as_posix()))

    walk(root, [])
    return out


def _add(zf: zipfile.ZipFile, path: Path, name: str) -> None:
    info = zipfile.ZipInfo(name, date_time=_EPOCH)
    mode = stat.S_IMODE(path.stat().st_mode)
    info.external_attr = ((mode | 0o600) & 0o755) << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    with path.open("rb") as src, zf.open(info, "w") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)


def pack_folder(folder: str, excludes: list[str] | None, *, top: str = "") -> bytes:
    """The zip of ``folder``'s kept files (under ``top/`` when given)."""
    root = Path(folder)
    limit = max_package_bytes()
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path, name in _files(root, excludes or []):
            _add(zf, path, f"{top}/{name}" if top else name)
            if buf.tell() > limit:
                raise _too_large(folder, buf.tell(), limit)
    data = buf.getvalue()
    if len(data) > limit:
        raise _too_large(folder, len(data), limit)
    return data


def pack_path(
    path: str, excludes: list[str] | None, *, as_module: bool
) -> tuple[bytes, str]:
    """``(bytes, extension)`` of a local working_dir (``as_module`` False) or
    py_modules entry: a folder is zipped (a module folder keeps its name as
    the top folder), a ``.py`` file is zipped alone, a ``.zip``/``.whl`` is
    taken as it is."""
    p = Path(path)
    limit = max_package_bytes()
    if p.is_dir():
        return pack_folder(path, excludes, top=p.name if as_module else ""), ".zip"
    size = p.stat().st_size
    if size > limit:
        raise _too_large(path, size, limit)
    if p.suffix in (".zip", ".whl"):
        return p.read_bytes(), p.suffix
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _add(zf, p, p.name)
    return buf.getvalue(), ".zip"


def package_uri(data: bytes, extension: str) -> str:
    digest = hashlib.sha256(data).hexdigest()[:32]
    return f"{PACKAGE_SCHEME}{PREFIX}{digest}{extension}"


def package_name(uri: str) -> str:
    """The file name part of a package URI (``_ember_pkg_<hash>.zip``)."""
    return uri[len(PACKAGE_SCHEME) :] if uri.startswith(PACKAGE_SCHEME) else uri


def unpack(data: bytes, target: str) -> None:
    """Extract ``data`` (a zip or wheel) into ``target``, as it was packed (a
    package of the cluster's own store keeps its layout, as in Ray)."""
    dest = Path(target).resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            name = info.filename
            if not name or name.startswith("__MACOSX/"):
                continue
            out = (dest / name).resolve()
            if dest != out and dest not in out.parents:
                raise ValueError(f"package member {name!r} would land outside {dest}")
            if name.endswith("/"):
                out.mkdir(parents=True, exist_ok=True)
                continue
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, open(out, "wb") as dst:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(out, mode | 0o600)
