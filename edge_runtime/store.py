"""Store-and-forward outbox: every event is on disk before it is published.

An :class:`Outbox` is one SQLite database in WAL mode with ``synchronous=FULL``,
so an event that :meth:`Outbox.put` returned for survives ``kill -9`` and a
power cut. The publisher sends rows in ``seq`` order and deletes a row only when
the broker's PUBACK for it arrives. The table is bounded: when it is full the
*oldest* rows are dropped and counted (``dropped``), never the newest.

It also hands out the per-device event sequence number, persisted in the same
transaction as the event, so numbers never repeat across restarts.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from edge_runtime.errors import ConfigError

__all__ = ["Outbox", "OutboxRow"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq      INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    topic    TEXT NOT NULL,
    payload  BLOB NOT NULL,
    created  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxRow:
    seq: int
    event_id: str
    topic: str
    payload: bytes


class Outbox:
    """Bounded, ordered, durable queue of events waiting for their PUBACK.

    >>> import tempfile, pathlib
    >>> box = Outbox(pathlib.Path(tempfile.mkdtemp()) / "outbox.db", max_events=2)
    >>> for i in range(3):
    ...     _ = box.put("t", lambda seq: (f"id{seq}", b"{}"), created=0.0)
    >>> [r.event_id for r in box.pending()], box.dropped
    (['id2', 'id3'], 1)
    """

    def __init__(self, path: Path, *, max_events: int = 10000) -> None:
        self.path = Path(path)
        self.max_events = max_events
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.executescript(_SCHEMA)
            # A read-only directory lets SQLite open the file but fails on the first write.
            self._db.execute("INSERT OR IGNORE INTO meta VALUES ('next_seq', 1), ('dropped', 0)")
        except (OSError, sqlite3.Error) as err:
            raise ConfigError(
                f"state directory {str(self.path.parent)!r}: cannot write the event queue there ({err}); "
                "pass a writable --state-dir"
            ) from err
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ write
    def put(self, topic: str, build: Callable[[int], tuple[str, bytes]], *, created: float) -> int:
        """Persist one event and return its sequence number; the row is durable on return.

        ``build(seq)`` returns ``(event_id, payload)``, so the payload can carry
        the sequence number allocated in the same transaction.
        """
        with self._lock:
            cur = self._db.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                seq = int(cur.execute("SELECT value FROM meta WHERE key='next_seq'").fetchone()[0])
                event_id, payload = build(seq)
                cur.execute("INSERT INTO outbox VALUES (?, ?, ?, ?, ?)", (seq, event_id, topic, payload, created))
                cur.execute("UPDATE meta SET value=? WHERE key='next_seq'", (seq + 1,))
                excess = cur.execute("SELECT COUNT(*) FROM outbox").fetchone()[0] - self.max_events
                if excess > 0:
                    cur.execute("DELETE FROM outbox WHERE seq IN (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", (excess,))
                    cur.execute("UPDATE meta SET value=value+? WHERE key='dropped'", (excess,))
                cur.execute("COMMIT")
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            return seq

    def delete(self, seq: int) -> None:
        """Forget an event the broker acknowledged."""
        with self._lock:
            self._db.execute("DELETE FROM outbox WHERE seq=?", (seq,))

    # ------------------------------------------------------------------- read
    def pending(self, after: int = 0, limit: int = 1000) -> list[OutboxRow]:
        """Unacknowledged events with ``seq > after``, oldest first."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, topic, payload FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?", (after, limit)
            ).fetchall()
        return [OutboxRow(int(s), str(e), str(t), bytes(p)) for s, e, t, p in rows]

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    @property
    def dropped(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT value FROM meta WHERE key='dropped'").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()
