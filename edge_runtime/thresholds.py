"""Choosing a threshold from scores: numpy only, so operators can tune on any machine.

Methods are written as strings, the same on the CLI and in the manifest:
``percentile:99.5``, ``sigma:3``, ``far:0.01`` (target false-alarm rate on
normal data), ``f1`` and ``recall:0.9`` (these two need labels).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import ConfigError, DataError

__all__ = ["ThresholdChoice", "choose_threshold", "parse_method"]

_NEEDS_LABELS = {"f1", "recall"}


@dataclass(frozen=True)
class ThresholdChoice:
    value: float
    method: str


def parse_method(text: str) -> tuple[str, float | None]:
    """``"percentile:99.5"`` -> ``("percentile", 99.5)``; validates the range."""
    name, _, arg = text.partition(":")
    name = name.strip().lower()
    defaults = {"percentile": 99.5, "sigma": 3.0, "far": 0.01, "f1": None, "recall": 0.9}
    if name not in defaults:
        raise ConfigError(
            f"threshold method {text!r} is unknown; use one of percentile:P, sigma:K, far:RATE, f1, recall:R"
        )
    if not arg:
        return name, defaults[name]
    try:
        value = float(arg)
    except ValueError:
        raise ConfigError(f"threshold method {text!r}: {arg!r} is not a number") from None
    ok = {
        "percentile": 0 < value < 100,
        "sigma": value > 0,
        "far": 0 < value < 1,
        "recall": 0 < value <= 1,
        "f1": True,
    }[name]
    if not ok or not np.isfinite(value):
        expected = {"percentile": "0 < P < 100", "sigma": "K > 0", "far": "0 < RATE < 1", "recall": "0 < R <= 1", "f1": ""}[name]
        raise ConfigError(f"threshold method {text!r}: {value!r} is out of range; expected {expected}")
    return name, value


def choose_threshold(
    scores: NDArray[np.floating], method: str = "percentile:99.5", labels: NDArray[np.integer] | None = None
) -> ThresholdChoice:
    """Pick a threshold. Without labels, ``scores`` must be scores of normal data.

    With labels (1 = anomalous), percentile/sigma/far use only the normal
    windows, and ``f1``/``recall`` use both classes.
    """
    scores = np.asarray(scores, dtype=np.float64)
    name, arg = parse_method(method)
    if labels is not None:
        labels = np.asarray(labels)
        normal = scores[labels == 0]
    else:
        if name in _NEEDS_LABELS:
            raise ConfigError(f"threshold method {method!r} needs labelled data; pass --labels COLUMN or use percentile/sigma/far")
        normal = scores
    if len(normal) == 0:
        raise DataError("no normal (label 0) windows to calibrate a threshold on; give data with healthy rows")
    if name == "percentile":
        value = float(np.percentile(normal, arg))
    elif name == "sigma":
        value = float(normal.mean() + arg * normal.std())
    elif name == "far":
        value = float(np.quantile(normal, 1.0 - arg))
    else:
        assert labels is not None
        value = _best_with_labels(scores, labels, name, arg)
    return ThresholdChoice(value=value, method=f"{name}:{arg:g}" if arg is not None else name)


def _best_with_labels(scores: NDArray[np.float64], labels: NDArray[np.integer], name: str, arg: float | None) -> float:
    pos = labels == 1
    if not pos.any():
        raise DataError(f"threshold method {name!r} needs anomalous (label 1) windows, and the data has none")
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], pos[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    # Only the last index of a run of equal scores is a real cut point.
    cut = np.r_[s[1:] != s[:-1], True]
    recall = tp / pos.sum()
    precision = tp / (tp + fp)
    if name == "f1":
        f1 = np.where(cut, 2 * precision * recall / np.maximum(precision + recall, 1e-12), -1)
        i = int(np.argmax(f1))
    else:
        ok = np.flatnonzero(cut & (recall >= arg))
        i = int(ok[0])
    # Threshold halfway to the next lower score, so "score > threshold" keeps
    # exactly the windows above the cut.
    nxt = s[i + 1] if i + 1 < len(s) else s[i] - 1e-9 * max(1.0, abs(s[i]))
    return float((s[i] + nxt) / 2)
