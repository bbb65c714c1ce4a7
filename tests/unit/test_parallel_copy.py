"""Large buffers are copied by several threads, byte for byte."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from ember.common import parallel_copy


@pytest.mark.parametrize("threads", ["1", "2", "3"])
@pytest.mark.parametrize("extra", [0, 1, 4095, 12345])
def test_copy_into_copies_every_byte(monkeypatch, threads, extra):
    monkeypatch.setenv("EMBER_COPY_THREADS", threads)
    n = parallel_copy.MIN_BYTES + extra
    src = np.random.default_rng(int(threads) + extra).integers(
        0, 256, n, dtype=np.uint8
    )
    with mmap.mmap(-1, n + 100) as m:
        out = memoryview(m)
        parallel_copy.copy_into(out[7 : 7 + n], src)
        assert bytes(out[:7]) == b"\0" * 7  # nothing outside the slice
        assert np.array_equal(np.frombuffer(m, np.uint8, n, 7), src)
        assert bytes(out[7 + n :]) == b"\0" * 93
        out.release()


def test_a_small_copy_is_a_plain_assignment():
    buf = bytearray(10)
    parallel_copy.copy_into(memoryview(buf)[2:5], b"abc")
    assert bytes(buf) == b"\0\0abc\0\0\0\0\0"


def test_threads_follows_the_environment(monkeypatch):
    monkeypatch.setenv("EMBER_COPY_THREADS", "3")
    assert parallel_copy.threads() == 3
    monkeypatch.setenv("EMBER_COPY_THREADS", "nonsense")
    assert parallel_copy.threads() == 1
    monkeypatch.delenv("EMBER_COPY_THREADS")
    assert 1 <= parallel_copy.threads() <= 8
