"""Compact autoencoders built so they convert to fully integer TFLite models.

Design constraints, from what the converters and the Edge TPU accept:

* no Conv1DTranspose (TRANSPOSE_CONV maps unreliably onto the Edge TPU): the
  conv decoder upsamples with nearest-neighbour resize, then convolves;
* LSTMs are plain unidirectional ``tf_keras`` layers so that, built with a
  fixed batch of 1, they convert to the fused UNIDIRECTIONAL_SEQUENCE_LSTM op;
* every model maps (window, channels) -> (window, channels);
* bottlenecks are narrow on purpose (4 for conv and dense, 8 for LSTM): a
  wide one learns to reproduce degraded windows too, and the error stops
  separating them (on C-MAPSS FD001, conv latent 16 scored ROC-AUC 0.89,
  latent 4 with (16, 8) filters 0.97).

``build_model(kind, window, n_channels, batch_size=None)`` builds the same
architecture for training (any batch) and export (batch 1); weights transfer
between them with ``set_weights``.
"""

from __future__ import annotations

from typing import Any, Callable

from trainer._tf import tf_and_keras

__all__ = ["MODEL_KINDS", "build_model"]


def _conv(window: int, n_channels: int, batch_size: int | None, latent: int = 4,
          filters: tuple[int, int] = (16, 8), kernel: int = 5) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    x = L.Conv1D(filters[0], kernel, padding="same", activation="relu")(inp)
    x = L.MaxPooling1D(2, padding="same")(x)
    x = L.Conv1D(filters[1], kernel, padding="same", activation="relu")(x)
    half = int(x.shape[1])
    x = L.Flatten()(x)
    z = L.Dense(latent, activation="relu", name="latent")(x)
    x = L.Dense(half * filters[1], activation="relu")(z)
    # Upsample as a 2-D nearest-neighbour resize: RESIZE_NEAREST_NEIGHBOR runs
    # on the Edge TPU, where TRANSPOSE_CONV does not reliably.
    x = L.Reshape((half, 1, filters[1]))(x)
    x = L.UpSampling2D((2, 1), interpolation="nearest")(x)
    x = L.Reshape((2 * half, filters[1]))(x)
    if 2 * half != window:
        x = L.Cropping1D((0, 2 * half - window))(x)
    x = L.Conv1D(filters[0], kernel, padding="same", activation="relu")(x)
    out = L.Conv1D(n_channels, kernel, padding="same", name="reconstruction")(x)
    return keras.Model(inp, out, name="conv_ae")


def _lstm(window: int, n_channels: int, batch_size: int | None, latent: int = 8) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    z = L.LSTM(latent, name="encoder")(inp)
    x = L.RepeatVector(window)(z)
    x = L.LSTM(latent, return_sequences=True, name="decoder")(x)
    out = L.TimeDistributed(L.Dense(n_channels), name="reconstruction")(x)
    return keras.Model(inp, out, name="lstm_ae")


def _dense(window: int, n_channels: int, batch_size: int | None, latent: int = 4, hidden: int = 32) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    x = L.Flatten()(inp)
    x = L.Dense(hidden, activation="relu")(x)
    z = L.Dense(latent, activation="relu", name="latent")(x)
    x = L.Dense(hidden, activation="relu")(z)
    x = L.Dense(window * n_channels)(x)
    out = L.Reshape((window, n_channels), name="reconstruction")(x)
    return keras.Model(inp, out, name="dense_ae")


_BUILDERS: dict[str, Callable[..., Any]] = {"conv": _conv, "lstm": _lstm, "dense": _dense}
MODEL_KINDS = tuple(_BUILDERS)


def build_model(kind: str, window: int, n_channels: int, batch_size: int | None = None, **params: Any) -> Any:
    """A fresh, uncompiled Keras autoencoder of the given kind."""
    if kind not in _BUILDERS:
        from edge_runtime.errors import ConfigError

        raise ConfigError(f"--model {kind!r} is unknown; use one of {', '.join(MODEL_KINDS)}")
    return _BUILDERS[kind](window, n_channels, batch_size, **params)
