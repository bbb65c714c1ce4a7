"""Rotating the files behind a process's descriptors (real files and descriptors)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from ember.common.log_rotation import (
    LogRotationConfigError,
    RotationSettings,
    StdRotator,
    shift_backups,
)
from ember.common.private_files import open_private_log


def test_defaults_are_rays(monkeypatch):
    for v in (
        "EMBER_LOG_ROTATION_MAX_BYTES",
        "RAY_ROTATION_MAX_BYTES",
        "EMBER_LOG_ROTATION_BACKUP_COUNT",
        "RAY_ROTATION_BACKUP_COUNT",
    ):
        monkeypatch.delenv(v, raising=False)
    s = RotationSettings.from_env()
    assert (s.max_bytes, s.backup_count) == (512 * 1024 * 1024, 5)
    monkeypatch.setenv("RAY_ROTATION_MAX_BYTES", "100")
    monkeypatch.setenv("EMBER_LOG_ROTATION_BACKUP_COUNT", "2")
    assert RotationSettings.from_env() == RotationSettings(100, 2)
    monkeypatch.setenv("EMBER_LOG_ROTATION_MAX_BYTES", "lots")
    with pytest.raises(LogRotationConfigError, match="EMBER_LOG_ROTATION_MAX_BYTES"):
        RotationSettings.from_env()


def test_a_full_file_is_renamed_and_the_descriptor_writes_a_fresh_one(tmp_path):
    path = str(tmp_path / "worker-1.out")
    fd = open_private_log(path)
    try:
        r = StdRotator(RotationSettings(max_bytes=10, backup_count=2))
        r.watch(fd, path)
        os.write(fd, b"0123456789abc\n")
        assert r.check()
        os.write(fd, b"after\n")
        assert Path(path + ".1").read_bytes() == b"0123456789abc\n"
        assert Path(path).read_bytes() == b"after\n"
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert not r.check()  # below the limit again
    finally:
        os.close(fd)


def test_backups_shift_and_the_oldest_is_dropped(tmp_path):
    path = str(tmp_path / "node.log")
    fd = open_private_log(path)
    try:
        r = StdRotator(RotationSettings(max_bytes=4, backup_count=2))
        r.watch(fd, path)
        for text in (b"one\n", b"two\n", b"three\n", b"four\n"):
            os.write(fd, text)
            r.check()
        assert sorted(os.listdir(tmp_path)) == ["node.log", "node.log.1", "node.log.2"]
        assert Path(path + ".1").read_bytes() == b"four\n"
        assert Path(path + ".2").read_bytes() == b"three\n"
    finally:
        os.close(fd)


def test_two_descriptors_on_one_file_move_together(tmp_path):
    path = str(tmp_path / "control.log")
    fd = open_private_log(path)
    dup = os.dup(fd)
    try:
        r = StdRotator(RotationSettings(max_bytes=3, backup_count=1))
        r.watch(fd, path)
        r.watch(dup, path)
        os.write(fd, b"full\n")
        assert r.check()
        os.write(dup, b"x\n")
        os.write(fd, b"y\n")
        assert Path(path).read_bytes() == b"x\ny\n"
    finally:
        os.close(fd)
        os.close(dup)


def test_no_backups_means_starting_over(tmp_path):
    path = str(tmp_path / "a.out")
    (tmp_path / "a.out").write_bytes(b"old")
    shift_backups(path, 0)
    assert os.listdir(tmp_path) == []


def test_rotation_off(tmp_path):
    path = str(tmp_path / "a.out")
    fd = open_private_log(path)
    try:
        r = StdRotator(RotationSettings(max_bytes=0))
        r.watch(fd, path)
        os.write(fd, b"x" * 100)
        assert not r.check()
        assert os.listdir(tmp_path) == ["a.out"]
    finally:
        os.close(fd)
