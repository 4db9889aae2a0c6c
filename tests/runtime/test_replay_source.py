"""ReplaySource streams: bounded read-ahead on a large queue, every row delivered in order.

The runtime's queue holds up to 1024 chunks (sized for a live port); a file
replay used to fill all of it (~28 MB of Python floats in the benchmark).
"""

from __future__ import annotations

import queue
from pathlib import Path

import pytest

from edge_runtime.serial_source import END, ReplaySource, make_decoder
from tests.runtime.conftest import CHANNELS, signal_rows, write_csv
from tests.runtime.test_gateway import wait_until


@pytest.mark.parametrize("max_ahead", [1, 3, 8], ids=lambda n: f"max_ahead={n}")
def test_replay_keeps_at_most_max_ahead_chunks_queued_and_delivers_every_row(tmp_path: Path, max_ahead: int) -> None:
    rows = signal_rows(2000, seed=2)
    csv = write_csv(tmp_path / "data.csv", rows)
    out: queue.Queue = queue.Queue(maxsize=1024)
    source = ReplaySource(csv, make_decoder("binary", CHANNELS, 100.0), out, channels=CHANNELS, rate_hz=100.0,
                          chunk=64, max_ahead=max_ahead)
    source.start()
    wait_until(lambda: out.qsize() >= max_ahead, 10, f"{max_ahead} chunks read ahead")
    got: list[tuple[float, ...]] = []
    depths = []
    while True:
        item = out.get(timeout=10)
        depths.append(out.qsize() + 1)          # what was waiting, this item included
        if item is END:
            break
        _, events = item
        got.extend(row for ev in events if type(ev).__name__ == "Samples" for row in ev.values)
    source.join(timeout=10)
    assert not source.is_alive() and source.error is None
    assert max(depths) <= max_ahead + 1          # + END, which is put without waiting
    assert got == [tuple(float(v) for v in r) for r in rows]


def test_max_ahead_below_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="max_ahead must be >= 1"):
        ReplaySource(tmp_path / "x.csv", None, queue.Queue(), channels=CHANNELS, rate_hz=None, max_ahead=0)
