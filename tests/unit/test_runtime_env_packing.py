"""Packing a working_dir (excludes, .gitignore, size limit, content URIs) and unpacking it."""

from __future__ import annotations

import io
import zipfile

import pytest

from ember.runtime_env import packing, upload


def _tree(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)


def _names(data: bytes) -> list[str]:
    return sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())


def test_excludes_and_ignore_files_are_honoured(tmp_path):
    _tree(
        tmp_path,
        {
            "main.py": "x = 1",
            "data/big.bin": "0" * 100,
            "notes.log": "log",
            ".gitignore": "*.log\n",
            "sub/.gitignore": "private/\n",
            "sub/keep.py": "",
            "sub/private/key.txt": "secret",
            "sub/.rayignore": "keep_not.txt\n",
            "sub/keep_not.txt": "",
        },
    )
    data = packing.pack_folder(str(tmp_path), ["data/"])
    assert _names(data) == [
        ".gitignore",
        "main.py",
        "sub/.gitignore",
        "sub/.rayignore",
        "sub/keep.py",
    ]


def test_gitignore_can_be_turned_off(tmp_path, monkeypatch):
    _tree(tmp_path, {"a.log": "", ".gitignore": "*.log\n"})
    monkeypatch.setenv("EMBER_RUNTIME_ENV_IGNORE_GITIGNORE", "1")
    assert "a.log" in _names(packing.pack_folder(str(tmp_path), None))


def test_same_content_same_uri_and_changes_change_it(tmp_path):
    _tree(tmp_path, {"a.py": "1", "b/c.py": "2"})
    first, _data = upload.pack(str(tmp_path), None, as_module=False)
    again, _ = upload.pack(str(tmp_path), None, as_module=False)
    assert first == again
    assert first.startswith("gcs://_ember_pkg_")
    assert first.endswith(".zip")
    (tmp_path / "a.py").write_text("changed")
    assert upload.pack(str(tmp_path), None, as_module=False)[0] != first


def test_module_folder_keeps_its_name(tmp_path):
    _tree(tmp_path, {"mypkg/__init__.py": "", "mypkg/core.py": ""})
    data, ext = packing.pack_path(str(tmp_path / "mypkg"), None, as_module=True)
    assert ext == ".zip"
    assert _names(data) == ["mypkg/__init__.py", "mypkg/core.py"]


def test_size_limit_raises_before_upload(tmp_path, monkeypatch):
    monkeypatch.setenv("EMBER_RUNTIME_ENV_MAX_PACKAGE_BYTES", "1000")
    import os

    (tmp_path / "blob.bin").write_bytes(os.urandom(5000))
    with pytest.raises(ValueError, match="exceeds the maximum size") as info:
        packing.pack_folder(str(tmp_path), None)
    assert "excludes" in str(info.value)


def test_unpack_keeps_the_layout_and_refuses_escapes(tmp_path):
    (tmp_path / "src" / "only").mkdir(parents=True)
    (tmp_path / "src" / "only" / "mod.py").write_text("v = 1")
    data = packing.pack_folder(str(tmp_path / "src"), None)
    packing.unpack(data, str(tmp_path / "out"))
    # one top folder stays a folder (a working_dir holding just a package)
    assert (tmp_path / "out" / "only" / "mod.py").read_text() == "v = 1"
    evil = io.BytesIO()
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../escape.py", "")
    with pytest.raises(ValueError, match="outside"):
        packing.unpack(evil.getvalue(), str(tmp_path / "out2"))
    assert not (tmp_path / "escape.py").exists()
