"""The scoring math, one numpy implementation for host and gateway.

Sign convention, decided once: **higher score means more anomalous**. Because
that is the opposite of scikit-learn's ``score_samples``, edgewatch uses its own
names: ``anomaly_score`` for the number and ``is_anomaly`` for the decision
(``score > threshold``), as PyOD and alibi-detect do.

The score of a window is its reconstruction error: the residual ``x - x_hat``,
optionally smoothed by a moving average over ``smooth`` time steps, is squared
(``mse``) or made absolute (``mae``), averaged over channels with optional
channel weights, then reduced over time steps by ``mean`` or ``max``.

Why smoothing: sensor noise that no model can predict dominates a raw
per-sample error, while degradation shows as a residual that persists for
several samples. Averaging the residual over a few steps before squaring
keeps the persistent part and shrinks white noise by the averaging length
(on C-MAPSS FD001 it lifts ROC-AUC by several points; see the README).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import ConfigError

__all__ = ["ScoreConfig", "window_scores", "channel_contributions", "SCORE_METHODS", "REDUCTIONS"]

SCORE_METHODS = ("mse", "mae")
REDUCTIONS = ("mean", "max")


@dataclass(frozen=True)
class ScoreConfig:
    """How a reconstruction becomes a score; stored in the bundle's manifest."""

    method: Literal["mse", "mae"] = "mse"
    reduce: Literal["mean", "max"] = "mean"
    channel_weights: tuple[float, ...] | None = None
    smooth: int = 1

    def __post_init__(self) -> None:
        if not (isinstance(self.smooth, int) and self.smooth >= 1):
            raise ConfigError(f"score smoothing {self.smooth!r} must be a whole number of time steps >= 1")
        if self.method not in SCORE_METHODS:
            raise ConfigError(f"score method {self.method!r} is not one of {', '.join(SCORE_METHODS)}")
        if self.reduce not in REDUCTIONS:
            raise ConfigError(f"score reduction {self.reduce!r} is not one of {', '.join(REDUCTIONS)}")
        if self.channel_weights is not None:
            w = np.asarray(self.channel_weights, dtype=np.float64)
            if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
                raise ConfigError(
                    f"channel weights {list(self.channel_weights)!r} must be finite, >= 0 and not all 0"
                )

    def to_manifest(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "reduce": self.reduce,
            "channel_weights": list(self.channel_weights) if self.channel_weights is not None else None,
            "smooth": self.smooth,
        }

    @classmethod
    def from_manifest(cls, d: dict[str, Any]) -> ScoreConfig:
        weights = d.get("channel_weights")
        return cls(
            method=d.get("method", "mse"),
            reduce=d.get("reduce", "mean"),
            channel_weights=tuple(float(v) for v in weights) if weights is not None else None,
            smooth=int(d.get("smooth", 1)),
        )

    def weights_for(self, n_channels: int) -> NDArray[np.float64]:
        if self.channel_weights is None:
            return np.full(n_channels, 1.0 / n_channels)
        w = np.asarray(self.channel_weights, dtype=np.float64)
        if len(w) != n_channels:
            raise ConfigError(f"{len(w)} channel weights given for {n_channels} channels; give one weight per channel")
        return w / w.sum()


def _elementwise(x: NDArray[Any], x_hat: NDArray[Any], config: ScoreConfig) -> NDArray[np.float64]:
    diff = np.asarray(x, dtype=np.float64) - np.asarray(x_hat, dtype=np.float64)
    k = config.smooth
    if k > 1:
        if k > diff.shape[1]:
            raise ConfigError(f"score smoothing {k} is longer than the window ({diff.shape[1]}); use at most the window length")
        csum = np.cumsum(diff, axis=1)
        csum = np.concatenate([np.zeros_like(csum[:, :1]), csum], axis=1)
        diff = (csum[:, k:] - csum[:, :-k]) / k
    return diff * diff if config.method == "mse" else np.abs(diff)


def window_scores(x: NDArray[Any], x_hat: NDArray[Any], config: ScoreConfig = ScoreConfig()) -> NDArray[np.float64]:
    """Anomaly score of each window.

    Parameters
    ----------
    x, x_hat : array (n_windows, window, n_channels)
        Scaled input windows and their reconstructions.

    Returns
    -------
    array (n_windows,)
    """
    err = _elementwise(x, x_hat, config)
    per_step = err @ config.weights_for(err.shape[-1])  # (n, window)
    return per_step.max(axis=1) if config.reduce == "max" else per_step.mean(axis=1)


def channel_contributions(x: NDArray[Any], x_hat: NDArray[Any], config: ScoreConfig = ScoreConfig()) -> NDArray[np.float64]:
    """Share of each window's score explained by each channel.

    Returns (n_windows, n_channels), rows summing to 1 (0 where the score is 0).
    With ``reduce="max"`` the shares are those of the time step that set the score.
    """
    err = _elementwise(x, x_hat, config) * config.weights_for(np.shape(x)[-1])
    if config.reduce == "max":
        step = err.sum(axis=2).argmax(axis=1)
        parts = err[np.arange(len(err)), step]
    else:
        parts = err.mean(axis=1)
    total = parts.sum(axis=1, keepdims=True)
    return np.divide(parts, total, out=np.zeros_like(parts), where=total > 0)
