"""The shared scoring math, windows and thresholds: pure numpy, no model needed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_runtime.errors import ConfigError, DataError
from edge_runtime.scoring import ScoreConfig, channel_contributions, window_scores
from edge_runtime.thresholds import choose_threshold, parse_method
from edge_runtime.windows import WindowBuffer, resegment, sliding_windows


def test_mse_mae_and_max_reduction_by_hand() -> None:
    x = np.zeros((1, 2, 2))
    x_hat = np.array([[[1.0, 3.0], [0.0, 2.0]]])
    # per-step channel means of squared error: (1+9)/2=5 and (0+4)/2=2
    assert window_scores(x, x_hat, ScoreConfig("mse", "mean"))[0] == pytest.approx(3.5)
    assert window_scores(x, x_hat, ScoreConfig("mse", "max"))[0] == pytest.approx(5.0)
    assert window_scores(x, x_hat, ScoreConfig("mae", "mean"))[0] == pytest.approx(1.5)
    weighted = ScoreConfig("mse", "mean", channel_weights=(1.0, 0.0))
    assert window_scores(x, x_hat, weighted)[0] == pytest.approx(0.5)


def test_smoothing_averages_the_residual_before_squaring() -> None:
    x = np.zeros((1, 4, 1))
    x_hat = np.array([[[1.0], [-1.0], [1.0], [-1.0]]])  # alternating noise cancels out
    assert window_scores(x, x_hat, ScoreConfig(smooth=2))[0] == pytest.approx(0.0)
    assert window_scores(x, x_hat + 2.0, ScoreConfig(smooth=2))[0] == pytest.approx(4.0)
    with pytest.raises(ConfigError, match="longer than the window"):
        window_scores(x, x_hat, ScoreConfig(smooth=5))


def test_contributions_name_the_channel_that_explains_the_error() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 8, 3))
    x_hat = x.copy()
    x_hat[:, :, 1] += 2.0
    contrib = channel_contributions(x, x_hat)
    assert np.allclose(contrib.sum(axis=1), 1.0)
    assert (contrib.argmax(axis=1) == 1).all()


@pytest.mark.parametrize("bad", [{"method": "rmse"}, {"reduce": "median"}, {"channel_weights": (0.0, 0.0)}, {"smooth": 0}])
def test_score_config_rejects_bad_values(bad: dict) -> None:
    with pytest.raises(ConfigError):
        ScoreConfig(**bad)


@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 60), window=st.integers(1, 8), stride=st.integers(1, 4), seed=st.integers(0, 1000))
def test_stream_buffer_gives_the_same_windows_as_the_batch_cut(n: int, window: int, stride: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.normal(size=(n, 2))
    segments = np.sort(rng.integers(0, 3, size=n))
    batch, ends = sliding_windows(values, window, stride, segments)
    streamed, stream_ends = [], []
    buf = WindowBuffer(window, stride, 2)
    for i in range(n):
        if i > 0 and segments[i] != segments[i - 1]:
            buf.reset()  # a gap: the gateway restarts windows exactly here
        w = buf.push(values[i])
        if w is not None:
            streamed.append(w)
            stream_ends.append(i)
    assert stream_ends == ends.tolist()
    if streamed:
        assert np.array_equal(np.stack(streamed), batch)
    for end in ends:  # no window crosses a segment boundary
        assert segments[end - window + 1] == segments[end]


def test_resegment_splits_where_rows_were_removed() -> None:
    segments = np.array([0, 0, 0, 0, 1, 1])
    mask = np.array([True, True, False, True, True, True])
    assert resegment(segments, mask).tolist() == [0, 0, 1, 2, 2]


def test_thresholds() -> None:
    normal = np.linspace(0, 1, 1001)
    assert choose_threshold(normal, "percentile:99").value == pytest.approx(0.99)
    assert choose_threshold(normal, "far:0.1").value == pytest.approx(0.9)
    assert choose_threshold(normal, "sigma:2").value == pytest.approx(normal.mean() + 2 * normal.std())
    scores = np.r_[np.linspace(0, 1, 50), np.linspace(2, 3, 50)]
    labels = np.r_[np.zeros(50), np.ones(50)]
    f1 = choose_threshold(scores, "f1", labels).value
    assert 1.0 < f1 < 2.0
    assert ((scores > f1) == labels.astype(bool)).all()
    assert choose_threshold(scores, "recall:1", labels).value < 2.0


@pytest.mark.parametrize("text", ["percentile:120", "sigma:-1", "far:2", "bogus", "percentile:abc"])
def test_threshold_methods_are_validated(text: str) -> None:
    with pytest.raises(ConfigError, match=text.split(":")[0]):
        parse_method(text)


def test_label_methods_need_labels() -> None:
    with pytest.raises(ConfigError, match="needs labelled data"):
        choose_threshold(np.ones(3), "f1")
    with pytest.raises(DataError, match="no normal"):
        choose_threshold(np.ones(3), "percentile:99", labels=np.ones(3))
