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

Latent scores (variational models, whose TFLite model also outputs the code's
mean and log-variance): ``kl`` is the KL divergence of the encoder's posterior
N(mean, exp(log_var)) from the prior N(0, I); ``mahalanobis`` is the distance of
the mean to the training codes' distribution (mean and precision stored in the
manifest). With a latent score the window score is the combined

    S = z(reconstruction) + latent_weight * z(latent),   z(v) = (v - center) / scale

where both centers and scales are the mean and standard deviation on held-out
normal (validation) windows, so neither part dominates by its units. Without a
latent score (``latent="none"``, the default and every older bundle) the score
is the raw reconstruction error, exactly as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import ConfigError

__all__ = ["ScoreConfig", "window_scores", "channel_contributions", "anomaly_scores", "latent_scores",
           "kl_divergence", "mahalanobis", "fit_latent_calibration", "ema", "SCORE_METHODS", "REDUCTIONS",
           "LATENT_SCORES"]

SCORE_METHODS = ("mse", "mae")
REDUCTIONS = ("mean", "max")
LATENT_SCORES = ("none", "kl", "mahalanobis")


@dataclass(frozen=True)
class ScoreConfig:
    """How a reconstruction becomes a score; stored in the bundle's manifest."""

    method: Literal["mse", "mae"] = "mse"
    reduce: Literal["mean", "max"] = "mean"
    channel_weights: tuple[float, ...] | None = None
    smooth: int = 1
    latent: Literal["none", "kl", "mahalanobis"] = "none"
    latent_weight: float = 1.0
    # Fitted by fit_latent_calibration (None until then): z-standardisation
    # constants and the training codes' mean and precision (inverse covariance).
    recon_center: float | None = None
    recon_scale: float | None = None
    latent_center: float | None = None
    latent_scale: float | None = None
    latent_mean: tuple[float, ...] | None = None
    latent_precision: tuple[tuple[float, ...], ...] | None = None

    def __post_init__(self) -> None:
        if not (isinstance(self.smooth, int) and self.smooth >= 1):
            raise ConfigError(f"score smoothing {self.smooth!r} must be a whole number of time steps >= 1")
        if self.method not in SCORE_METHODS:
            raise ConfigError(f"score method {self.method!r} is not one of {', '.join(SCORE_METHODS)}")
        if self.reduce not in REDUCTIONS:
            raise ConfigError(f"score reduction {self.reduce!r} is not one of {', '.join(REDUCTIONS)}")
        if self.latent not in LATENT_SCORES:
            raise ConfigError(f"latent score {self.latent!r} is not one of {', '.join(LATENT_SCORES)}")
        if not (np.isfinite(self.latent_weight) and self.latent_weight >= 0):
            raise ConfigError(f"--latent-weight (lambda) {self.latent_weight!r} must be a finite number >= 0, e.g. 1.0")
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
            **({} if self.latent == "none" else {
                "latent": self.latent, "latent_weight": self.latent_weight,
                "recon_center": self.recon_center, "recon_scale": self.recon_scale,
                "latent_center": self.latent_center, "latent_scale": self.latent_scale,
                "latent_mean": None if self.latent_mean is None else list(self.latent_mean),
                "latent_precision": None if self.latent_precision is None else [list(r) for r in self.latent_precision],
            }),
        }

    @property
    def calibrated(self) -> bool:
        if self.latent == "none":
            return True
        fitted = None not in (self.recon_center, self.recon_scale, self.latent_center, self.latent_scale)
        return fitted and (self.latent != "mahalanobis" or self.latent_precision is not None)

    @classmethod
    def from_manifest(cls, d: dict[str, Any]) -> ScoreConfig:
        weights = d.get("channel_weights")
        return cls(
            method=d.get("method", "mse"),
            reduce=d.get("reduce", "mean"),
            channel_weights=tuple(float(v) for v in weights) if weights is not None else None,
            smooth=int(d.get("smooth", 1)),
            latent=d.get("latent", "none"),
            latent_weight=float(d.get("latent_weight", 1.0)),
            recon_center=_opt_float(d.get("recon_center")),
            recon_scale=_opt_float(d.get("recon_scale")),
            latent_center=_opt_float(d.get("latent_center")),
            latent_scale=_opt_float(d.get("latent_scale")),
            latent_mean=None if d.get("latent_mean") is None else tuple(float(v) for v in d["latent_mean"]),
            latent_precision=None if d.get("latent_precision") is None
            else tuple(tuple(float(v) for v in row) for row in d["latent_precision"]),
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


def _opt_float(v: Any) -> float | None:
    return None if v is None else float(v)


def _split(latent_stats: NDArray[Any]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    stats = np.asarray(latent_stats, dtype=np.float64)
    half = stats.shape[-1] // 2
    return stats[:, :half], stats[:, half:]


def kl_divergence(latent_stats: NDArray[Any]) -> NDArray[np.float64]:
    """KL(N(mean, exp(log_var)) || N(0, I)) of each window; ``latent_stats`` is (n, 2*latent) = [mean, log_var]."""
    mean, log_var = _split(latent_stats)
    return 0.5 * np.sum(np.exp(log_var) + mean * mean - 1.0 - log_var, axis=1)


def mahalanobis(codes: NDArray[Any], center: NDArray[Any], precision: NDArray[Any]) -> NDArray[np.float64]:
    """Mahalanobis distance of each code (n, d) to a distribution with ``center`` and ``precision``."""
    d = np.asarray(codes, dtype=np.float64) - np.asarray(center, dtype=np.float64)
    return np.sqrt(np.maximum(np.einsum("ni,ij,nj->n", d, np.asarray(precision, dtype=np.float64), d), 0.0))


def latent_scores(latent_stats: NDArray[Any], config: ScoreConfig) -> NDArray[np.float64]:
    """The latent part of the score (before standardisation)."""
    if config.latent == "kl":
        return kl_divergence(latent_stats)
    if config.latent == "mahalanobis":
        if config.latent_mean is None or config.latent_precision is None:
            raise ConfigError("the Mahalanobis latent score has no training-code statistics; re-train the bundle")
        return mahalanobis(_split(latent_stats)[0], np.asarray(config.latent_mean), np.asarray(config.latent_precision))
    raise ConfigError(f"latent score {config.latent!r} has no latent part")


def anomaly_scores(x: NDArray[Any], x_hat: NDArray[Any], latent_stats: NDArray[Any] | None,
                   config: ScoreConfig = ScoreConfig()) -> NDArray[np.float64]:
    """The window score the threshold applies to: reconstruction alone, or the combined score.

    ``latent_stats`` is the model's second output (n, 2*latent), or None for
    models without one (allowed only with ``latent="none"``).
    """
    recon = window_scores(x, x_hat, config)
    if config.latent == "none":
        return recon
    if latent_stats is None:
        raise ConfigError(f"score {config.latent!r} needs a model with a latent output (conv-vae, lstm-vae); "
                          "this model has only a reconstruction")
    if not config.calibrated:
        raise ConfigError("the combined score has no validation constants; fit them with fit_latent_calibration")
    z_rec = (recon - config.recon_center) / config.recon_scale  # type: ignore[operator]
    z_lat = (latent_scores(latent_stats, config) - config.latent_center) / config.latent_scale  # type: ignore[operator]
    return z_rec + config.latent_weight * z_lat


def fit_latent_calibration(config: ScoreConfig, train_latent: NDArray[Any] | None,
                           val_recon_scores: NDArray[Any], val_latent: NDArray[Any] | None) -> ScoreConfig:
    """Fill in the constants of a latent score: code statistics from training
    windows, z-standardisation from validation windows. A no-op without a latent score."""
    from dataclasses import replace

    if config.latent == "none":
        return config
    if train_latent is None or val_latent is None:
        raise ConfigError(f"score {config.latent!r} needs a model with a latent output (conv-vae, lstm-vae)")
    if config.latent == "mahalanobis":
        codes = _split(train_latent)[0]
        cov = np.atleast_2d(np.cov(codes, rowvar=False))
        # A small ridge keeps the precision finite when a code dimension has collapsed.
        cov += np.eye(len(cov)) * (1e-6 + 1e-3 * float(np.trace(cov)) / len(cov))
        config = replace(config, latent_mean=tuple(float(v) for v in codes.mean(axis=0)),
                         latent_precision=tuple(tuple(float(v) for v in row) for row in np.linalg.inv(cov)))
    rec = np.asarray(val_recon_scores, dtype=np.float64)
    lat = latent_scores(val_latent, config)
    return replace(config, recon_center=float(rec.mean()), recon_scale=float(max(rec.std(), 1e-12)),
                   latent_center=float(lat.mean()), latent_scale=float(max(lat.std(), 1e-12)))


def ema(scores: NDArray[Any], alpha: float) -> NDArray[np.float64]:
    """Exponential moving average of consecutive window scores (``alpha`` in (0, 1], 1 = no smoothing).

    The same recursion as the gateway's alarm EMA (:class:`edge_runtime.alarms.AlarmMachine`).
    """
    if not 0 < alpha <= 1:
        raise ConfigError(f"EMA alpha {alpha!r} must be in (0, 1]; 1 means no smoothing")
    s = np.asarray(scores, dtype=np.float64)
    out = np.empty_like(s)
    acc = None
    for i, v in enumerate(s):
        acc = v if acc is None else alpha * v + (1.0 - alpha) * acc
        out[i] = acc
    return out
