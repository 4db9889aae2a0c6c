"""``AutoencoderDetector``: scikit-learn's estimator contract around a Keras autoencoder.

* ``__init__`` stores parameters only; everything learned ends in ``_``.
* ``fit(X, segments)`` standardises on the training split, trains with early
  stopping (best weights restored), and calibrates ``threshold_`` on the
  validation split, which is held out by whole segments (units) or by trailing
  time blocks -- never by shuffling overlapping windows, which would leak
  neighbours of validation windows into training and set thresholds too low.
* ``anomaly_score`` (higher = more anomalous) and ``is_anomaly`` use the shared
  scoring math in :mod:`edge_runtime.scoring`; see there for the sign decision.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from edge_runtime.errors import ConfigError, DataError, NotFittedError
from edge_runtime.preprocess import Standardizer
from edge_runtime.scoring import ScoreConfig, anomaly_scores, channel_contributions, fit_latent_calibration, window_scores
from edge_runtime.thresholds import choose_threshold
from edge_runtime.windows import resegment, segment_bounds, sliding_windows
from trainer._tf import tf_and_keras
from trainer.models import build_model, is_vae
from trainer.training import TrainingOptions, make_trainer

__all__ = ["AutoencoderDetector", "split_validation"]


@dataclass(frozen=True)
class _Split:
    train_mask: NDArray[np.bool_]
    how: str


def split_validation(segments: NDArray[np.int64], fraction: float) -> _Split:
    """Hold out whole segments when there are enough, else the tail of each segment."""
    bounds = segment_bounds(segments, len(segments))
    mask = np.ones(len(segments), dtype=bool)
    if len(bounds) >= 5:
        n_val = max(1, round(len(bounds) * fraction))
        for start, stop in bounds[-n_val:]:
            mask[start:stop] = False
        return _Split(mask, f"last {n_val} of {len(bounds)} units")
    for start, stop in bounds:
        cut = stop - int(round((stop - start) * fraction))
        mask[cut:stop] = False
    return _Split(mask, f"last {fraction:.0%} of each run (time block)")


class AutoencoderDetector:
    """Reconstruction-error anomaly detector.

    Parameters
    ----------
    model : {"conv", "lstm", "dense", "conv-vae", "lstm-vae"}
    window, stride : int
        Window length in samples; hop between training windows.
    epochs, batch_size, patience, learning_rate : training settings.
    val_fraction : float
        Share of the data held out for early stopping and calibration.
    threshold_method : str
        See :mod:`edge_runtime.thresholds` (``percentile:99.5`` by default).
    score : ScoreConfig
        With a latent score (variational models only) its constants are
        fitted in ``fit`` and the fitted config is ``score_``.
    training : TrainingOptions
        Denoising, penalties, and the variational KL weight schedule.
    seed : int
        Seeds numpy, Python and TensorFlow for reproducible runs.

    Attributes
    ----------
    scaler_ : Standardizer
    model_ : the trained Keras model
    threshold_ : float
    score_ : ScoreConfig, with fitted constants for a latent score
    val_scores_ : array of validation (normal) window scores
    n_features_in_ : int
    history_ : dict of per-epoch losses
    """

    def __init__(self, model: str = "conv", window: int = 30, stride: int = 1, epochs: int = 80,
                 batch_size: int = 64, patience: int = 8, learning_rate: float = 1e-3,
                 val_fraction: float = 0.2, threshold_method: str = "percentile:99.5",
                 score: ScoreConfig = ScoreConfig(), seed: int = 0, verbose: int | None = None,
                 model_params: dict[str, Any] | None = None, training: TrainingOptions = TrainingOptions()) -> None:
        self.model = model
        self.window = window
        self.stride = stride
        self.epochs = epochs
        self.batch_size = batch_size
        self.patience = patience
        self.learning_rate = learning_rate
        self.val_fraction = val_fraction
        self.threshold_method = threshold_method
        self.score = score
        self.seed = seed
        self.verbose = verbose
        self.model_params = model_params
        self.training = training

    # ------------------------------------------------------------------ fit
    def fit(self, X: NDArray[Any], segments: NDArray[np.int64] | None = None,
            channels: tuple[str, ...] | None = None, source: str = "training data") -> AutoencoderDetector:
        tf, keras = tf_and_keras()
        X = np.asarray(X, dtype=np.float64)
        segments = np.zeros(len(X), dtype=np.int64) if segments is None else np.asarray(segments)
        channels = channels or tuple(f"ch{i}" for i in range(X.shape[1]))
        split = split_validation(segments, self.val_fraction)
        self.scaler_ = Standardizer.fit(X[split.train_mask], channels, source)
        scaled = self.scaler_.transform(X)
        train_w, _ = sliding_windows(scaled[split.train_mask], self.window, self.stride, resegment(segments, split.train_mask))
        val_w, _ = sliding_windows(scaled[~split.train_mask], self.window, 1, resegment(segments, ~split.train_mask))
        if len(train_w) < 2 or len(val_w) < 2:
            raise DataError(
                f"{source}: {len(X)} rows give {len(train_w)} training and {len(val_w)} validation windows of "
                f"{self.window}; give more healthy rows or a smaller --window"
            )
        keras.utils.set_random_seed(self.seed)
        tf.config.experimental.enable_op_determinism()
        vae = is_vae(self.model)
        if self.score.latent != "none" and not vae:
            raise ConfigError(f"--latent-score {self.score.latent!r} needs a variational model (--model conv-vae or "
                              f"lstm-vae); {self.model!r} has no latent distribution")
        net = build_model(self.model, self.window, X.shape[1], **(self.model_params or {}),
                          **self.training.layer_regularisation)
        trainer, callbacks = make_trainer(net, self.training, vae, self.window * X.shape[1])
        trainer.compile(optimizer=keras.optimizers.Adam(self.learning_rate))
        verbose = self.verbose if self.verbose is not None else (1 if sys.stderr.isatty() else 2)
        stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=self.patience, restore_best_weights=True)
        hist = trainer.fit(train_w, train_w, validation_data=(val_w, val_w), epochs=self.epochs,
                           batch_size=self.batch_size, shuffle=True, callbacks=[*callbacks, stop], verbose=verbose)
        self.model_ = net
        self.history_ = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
        self.n_features_in_ = X.shape[1]
        self.channels_ = channels
        self.split_ = split.how
        self.train_windows_ = train_w
        self.val_windows_ = val_w
        self.score_ = self.score
        if self.score.latent != "none":
            recon, latent = self.predict_scaled(val_w)
            self.score_ = fit_latent_calibration(self.score, self.predict_scaled(train_w)[1],
                                                 window_scores(val_w, recon, self.score), latent)
        self.val_scores_ = self.score_scaled(val_w)
        choice = choose_threshold(self.val_scores_, self.threshold_method)
        self.threshold_ = choice.value
        self.threshold_method_ = choice.method
        return self

    # -------------------------------------------------------------- scoring
    def _check(self, windows: NDArray[Any]) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("this AutoencoderDetector is not fitted yet; call fit(X) first")
        if windows.ndim != 3 or windows.shape[2] != self.n_features_in_ or windows.shape[1] != self.window:
            raise DataError(f"expected windows of shape (n, {self.window}, {self.n_features_in_}), got {windows.shape}")

    def predict_scaled(self, windows: NDArray[Any]) -> tuple[NDArray[np.float32], NDArray[np.float32] | None]:
        """(reconstructions, latent stats [mean, log_var] or None) of scaled windows; the mean path."""
        self._check(np.asarray(windows))
        out = self.model_.predict(np.asarray(windows, dtype=np.float32), batch_size=512, verbose=0)
        return (out[0], out[1]) if isinstance(out, list) else (out, None)

    def reconstruct_scaled(self, windows: NDArray[Any]) -> NDArray[np.float32]:
        return self.predict_scaled(windows)[0]

    def score_scaled(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        recon, latent = self.predict_scaled(windows)
        return anomaly_scores(windows, recon, latent, getattr(self, "score_", self.score))

    def anomaly_score(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        """Score raw windows (n, window, channels); higher is more anomalous."""
        scaled = self.scaler_.transform(np.asarray(windows)) if hasattr(self, "scaler_") else windows
        return self.score_scaled(scaled)

    def contributions(self, windows: NDArray[Any]) -> NDArray[np.float64]:
        scaled = self.scaler_.transform(np.asarray(windows))
        return channel_contributions(scaled, self.reconstruct_scaled(scaled), self.score_)

    def is_anomaly(self, windows: NDArray[Any]) -> NDArray[np.bool_]:
        return self.anomaly_score(windows) > self.threshold_

