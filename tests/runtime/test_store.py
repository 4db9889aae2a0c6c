"""The SQLite outbox: durable, ordered, bounded (drops the oldest and counts them)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from edge_runtime.errors import ConfigError
from edge_runtime.store import Outbox


def put(box: Outbox, n: int) -> list[int]:
    return [box.put("t", lambda seq: (f"id-{seq}", f'{{"seq": {seq}}}'.encode()), created=0.0) for _ in range(n)]


def test_events_come_back_in_order_and_leave_only_when_deleted(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    seqs = put(box, 5)
    assert seqs == [1, 2, 3, 4, 5]
    box.delete(2)
    assert [r.seq for r in box.pending()] == [1, 3, 4, 5]
    assert [r.seq for r in box.pending(after=3, limit=1)] == [4]
    assert box.pending()[0].payload == b'{"seq": 1}'


def test_full_outbox_drops_the_oldest_and_counts(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db", max_events=3)
    put(box, 5)
    assert [r.event_id for r in box.pending()] == ["id-3", "id-4", "id-5"]
    assert box.dropped == 2


def test_rows_and_sequence_survive_reopening(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    put(box, 3)
    box.delete(1)
    box.close()
    again = Outbox(tmp_path / "o.db")
    assert [r.seq for r in again.pending()] == [2, 3]
    assert put(again, 1) == [4]
    assert sqlite3.connect(tmp_path / "o.db").execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_unwritable_location_is_a_config_error(tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="writable --state-dir"):
        Outbox(blocker / "state" / "o.db")
