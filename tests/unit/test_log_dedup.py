"""The driver's deduplication of repeated worker lines (pure: times are passed in)."""

from __future__ import annotations

import pytest

from ember.runtime.log_dedup import (
    HINT,
    TQDM_MAGIC,
    Batch,
    LogDeduplicator,
    canonical,
    dedup_enabled,
)


def batch(pid: int, *lines: str, ip: str = "10.0.0.1") -> Batch:
    return Batch((ip, pid), list(lines), {"pid": pid, "ip": ip, "name": "square"})


def printed(batches: list[Batch]) -> list[tuple[int, str, str]]:
    return [
        (b.meta["pid"], line, b.meta.get("repeated", ""))
        for b in batches
        for line in b.lines
    ]


def test_words_with_numbers_do_not_count():
    assert canonical("step 12 of 0x1f done in 3.2s") == "step of done in"
    assert canonical("1 2 3") == ""


def test_first_line_is_printed_at_once_and_repeats_across_workers_are_counted():
    d = LogDeduplicator(window_s=5)
    assert printed(d.deduplicate(batch(1, "hello"), now=0.0)) == [(1, "hello", "")]
    for pid in range(2, 11):
        assert printed(d.deduplicate(batch(pid, "hello"), now=1.0)) == []
    # the window ends: one summary naming the latest source and the count
    out = printed(d.deduplicate(batch(99, "other"), now=5.5))
    assert out[0] == (99, "other", "")
    assert out[1][:2] == (10, "hello")
    assert out[1][2].startswith(" [repeated 9x across cluster]")


def test_the_hint_comes_with_the_first_summary_only():
    d = LogDeduplicator(window_s=1)
    d.deduplicate(batch(1, "x"), 0.0)
    d.deduplicate(batch(2, "x"), 0.1)
    d.deduplicate(batch(3, "x"), 0.2)
    first = d.expire(1.5)
    assert first[0].meta["repeated"] == " [repeated 2x across cluster]" + HINT
    d.deduplicate(batch(4, "x"), 1.6)
    d.deduplicate(batch(5, "x"), 1.7)
    again = d.expire(3.0)
    assert again[0].meta["repeated"] == " [repeated 2x across cluster]"


def test_lines_from_one_worker_are_never_held_back():
    d = LogDeduplicator(window_s=5)
    out = []
    for i in range(5):
        out += printed(d.deduplicate(batch(7, "tick"), now=float(i) / 10))
    assert out == [(7, "tick", "")] * 5


def test_a_single_repeat_is_printed_as_the_line_itself():
    d = LogDeduplicator(window_s=5)
    d.deduplicate(batch(1, "once more"), 0.0)
    assert d.deduplicate(batch(2, "once more"), 1.0)[1:] == []
    assert printed(d.expire(6.0)) == [(2, "once more", "")]
    assert d.recent == {}


def test_summaries_go_on_window_after_window_and_then_stop():
    d = LogDeduplicator(window_s=5)
    d.deduplicate(batch(1, "again"), 0.0)
    d.deduplicate(batch(2, "again"), 1.0)
    d.deduplicate(batch(3, "again"), 1.0)
    assert [r for _, _, r in printed(d.expire(5.0))] == [
        " [repeated 2x across cluster]" + HINT
    ]
    assert d.next_expiry() == 10.0
    assert d.expire(10.0) == []  # nothing more was counted: forgotten
    assert d.recent == {}
    assert d.next_expiry() is None


def test_flush_settles_everything_at_shutdown():
    d = LogDeduplicator(window_s=5)
    for pid in (1, 2, 3, 4):
        d.deduplicate(batch(pid, "bye"), 0.0)
    out = printed(d.flush())
    assert out[0][:2] == (4, "bye")
    assert out[0][2].startswith(" [repeated 3x across cluster]")
    assert d.recent == {}


def test_tqdm_lines_empty_keys_and_the_regexes():
    d = LogDeduplicator(window_s=5, allow_re="KEEP", skip_re="NOISE")
    magic = f'{{"__magic_token__": "{TQDM_MAGIC}", "x": 1}}'
    lines = [magic, "KEEP me", "12345", "NOISE here"]
    for pid in (1, 2):
        assert printed(d.deduplicate(batch(pid, *lines), 0.0)) == [
            (pid, magic, ""),
            (pid, "KEEP me", ""),
            (pid, "12345", ""),
        ]


def test_the_switch(monkeypatch):
    monkeypatch.delenv("EMBER_DEDUP_LOGS", raising=False)
    monkeypatch.delenv("RAY_DEDUP_LOGS", raising=False)
    assert dedup_enabled()
    monkeypatch.setenv("RAY_DEDUP_LOGS", "0")
    assert not dedup_enabled()
    monkeypatch.setenv("EMBER_DEDUP_LOGS", "1")
    assert dedup_enabled()
    monkeypatch.setenv("EMBER_DEDUP_LOGS", "0")
    assert not dedup_enabled()


def test_the_window_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMBER_DEDUP_LOGS_AGG_WINDOW_S", "2")
    assert LogDeduplicator.from_env().window_s == 2.0
    monkeypatch.setenv("EMBER_DEDUP_LOGS_AGG_WINDOW_S", "soon")
    with pytest.raises(ValueError, match="EMBER_DEDUP_LOGS_AGG_WINDOW_S"):
        LogDeduplicator.from_env()
