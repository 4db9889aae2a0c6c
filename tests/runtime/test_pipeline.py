"""The synchronous pipeline on firmware_bridge events, with the real int8 bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edge_runtime.bundle import Bundle
from edge_runtime.config import AlarmSettings
from edge_runtime.metrics import Metrics
from edge_runtime.pipeline import ChannelMismatchError, Pipeline, ScoredWindow
from edge_runtime.scorer import BundleScorer
from firmware_bridge.protocol import Gap, Hello, Samples
from tests.runtime.conftest import CHANNELS, signal_rows


@pytest.fixture(scope="module")
def scorer(bundle_file: Path) -> BundleScorer:
    return BundleScorer(Bundle.load(bundle_file))


def make(scorer: BundleScorer) -> tuple[Pipeline, list[ScoredWindow]]:
    windows: list[ScoredWindow] = []
    p = Pipeline(scorer, stride=scorer.bundle.stride, alarm=AlarmSettings(), sample_rate_hz=100.0,
                 on_event=lambda e, w: None, metrics=Metrics(), on_window=windows.append)
    return p, windows


def hello(channels: list[str]) -> Hello:
    return Hello("dev", "fw", tuple(channels), ("",) * len(channels), 100.0, (1.0,) * len(channels))


def samples(rows: np.ndarray, first: int, channels: list[str] = CHANNELS) -> Samples:
    return Samples(first, first * 10_000, tuple(channels), tuple(tuple(float(v) for v in r) for r in rows))


def test_stream_scores_equal_batch_scores_across_a_gap(scorer: BundleScorer) -> None:
    rows = signal_rows(300, anomalies=[(150, 200)])
    p, windows = make(scorer)
    p.handle(hello(CHANNELS), 0.0)
    for i in range(0, 130, 10):           # segment A: rows 0..129, in frames of 10
        p.handle(samples(rows[i:i + 10], i), 0.0)
    p.handle(Gap(lost_frames=3, reason="sequence"), 0.0)
    for i in range(130, 300, 17):         # segment B: rows 130..299, uneven frames
        p.handle(samples(rows[i:min(i + 17, 300)], i), 0.0)
    segments = np.where(np.arange(300) < 130, 0, 1)
    batch = scorer.score_rows(rows.astype(np.float64), segments, stride=scorer.bundle.stride)
    assert [w.score for w in windows] == batch.scores.tolist()
    assert p.metrics.lost_frames == 3 and p.metrics.gaps == 1


def test_no_window_is_spliced_across_a_gap(scorer: BundleScorer) -> None:
    w = scorer.window
    rows = signal_rows(2 * w)
    p, windows = make(scorer)
    p.handle(samples(rows[: w - 1], 0), 0.0)
    p.handle(Gap(lost_frames=1, reason="reset"), 0.0)
    p.handle(samples(rows[w - 1: 2 * w - 2], w), 0.0)
    assert windows == []          # 2w-2 samples, but never w in a row
    p.handle(samples(rows[2 * w - 2: 2 * w - 1], 2 * w), 0.0)
    assert len(windows) == 1


def test_channels_are_mapped_by_name_from_the_hello(scorer: BundleScorer) -> None:
    rows = signal_rows(64)
    order = ["temp", "current", "vib_z", "vib_y", "vib_x"]
    shuffled = np.column_stack([np.zeros(len(rows)), rows[:, 3], rows[:, 2], rows[:, 1], rows[:, 0]])
    p1, plain = make(scorer)
    p2, mapped = make(scorer)
    p1.handle(samples(rows, 0), 0.0)
    p2.handle(hello(order), 0.0)
    p2.handle(samples(shuffled, 0, order), 0.0)
    assert [w.score for w in mapped] == [w.score for w in plain] and plain


def test_hello_without_the_bundle_channels_is_a_clear_error(scorer: BundleScorer) -> None:
    p, _ = make(scorer)
    with pytest.raises(ChannelMismatchError, match=r"expects channels .*\(missing \['vib_z', 'current'\]\)"):
        p.handle(hello(["vib_x", "vib_y", "temp"]), 0.0)
