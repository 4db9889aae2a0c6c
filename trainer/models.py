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

Variational kinds (``conv-vae``, ``lstm-vae``): the encoder ends in two Dense
heads, ``z_mean`` and ``z_log_var``; the decoder is a nested model named
``decoder`` so that training (:mod:`trainer.training`) can decode a sampled
code ``z = mean + exp(log_var / 2) * eps``. The built model itself is the
deterministic export model with two outputs: the reconstruction decoded from
the mean, shape (window, channels), and ``latent_stats`` = [mean, log_var],
shape (2 * latent,), from which the gateway computes the KL term and the
Mahalanobis distance. The scorer tells the outputs apart by rank.

Regularisation that lives in the layers (``activity_l1`` on the code,
``weight_decay`` = L2 on every kernel) is passed at training time only: it
adds no weights, so the export build without it takes the same weights.
"""

from __future__ import annotations

from typing import Any, Callable

from trainer._tf import tf_and_keras

__all__ = ["MODEL_KINDS", "VAE_KINDS", "build_model", "latent_size", "is_vae"]


def _reg(activity_l1: float = 0.0, weight_decay: float = 0.0) -> tuple[dict[str, Any], dict[str, Any]]:
    """(kwargs for every kernel, kwargs for the code layer)."""
    _, keras = tf_and_keras()
    kernel = {"kernel_regularizer": keras.regularizers.L2(weight_decay)} if weight_decay else {}
    code = {"activity_regularizer": keras.regularizers.L1(activity_l1)} if activity_l1 else {}
    return kernel, code


def _conv_encoder(inp: Any, kernel: int, filters: tuple[int, int], k: dict[str, Any]) -> tuple[Any, int]:
    _, keras = tf_and_keras()
    L = keras.layers
    x = L.Conv1D(filters[0], kernel, padding="same", activation="relu", **k)(inp)
    x = L.MaxPooling1D(2, padding="same")(x)
    x = L.Conv1D(filters[1], kernel, padding="same", activation="relu", **k)(x)
    half = int(x.shape[1])
    return L.Flatten()(x), half


def _conv_decoder(z: Any, window: int, n_channels: int, half: int, kernel: int, filters: tuple[int, int],
                  k: dict[str, Any]) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    x = L.Dense(half * filters[1], activation="relu", **k)(z)
    x = L.Reshape((half, 1, filters[1]))(x)
    x = L.UpSampling2D((2, 1), interpolation="nearest")(x)
    x = L.Reshape((2 * half, filters[1]))(x)
    if 2 * half != window:
        x = L.Cropping1D((0, 2 * half - window))(x)
    x = L.Conv1D(filters[0], kernel, padding="same", activation="relu", **k)(x)
    return L.Conv1D(n_channels, kernel, padding="same", name="reconstruction", **k)(x)


def _conv(window: int, n_channels: int, batch_size: int | None, latent: int = 4,
          filters: tuple[int, int] = (16, 8), kernel: int = 5, **reg: float) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    k, code = _reg(**reg)
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    x, half = _conv_encoder(inp, kernel, filters, k)
    z = L.Dense(latent, activation="relu", name="latent", **k, **code)(x)
    out = _conv_decoder(z, window, n_channels, half, kernel, filters, k)
    return keras.Model(inp, out, name="conv_ae")


def _vae_heads(x: Any, latent: int, k: dict[str, Any], code: dict[str, Any]) -> tuple[Any, Any, Any]:
    _, keras = tf_and_keras()
    L = keras.layers
    mean = L.Dense(latent, name="z_mean", **k, **code)(x)
    log_var = L.Dense(latent, name="z_log_var", **k)(x)
    return mean, log_var, L.Concatenate(name="latent_stats")([mean, log_var])


def _conv_vae(window: int, n_channels: int, batch_size: int | None, latent: int = 4,
              filters: tuple[int, int] = (16, 8), kernel: int = 5, **reg: float) -> Any:
    _, keras = tf_and_keras()
    k, code = _reg(**reg)
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    x, half = _conv_encoder(inp, kernel, filters, k)
    mean, _, stats = _vae_heads(x, latent, k, code)
    z_in = keras.Input((latent,), batch_size=batch_size, name="z")
    decoder = keras.Model(z_in, _conv_decoder(z_in, window, n_channels, half, kernel, filters, k), name="decoder")
    return keras.Model(inp, [decoder(mean), stats], name="conv_vae")


def _lstm_vae(window: int, n_channels: int, batch_size: int | None, latent: int = 8, hidden: int = 16,
              **reg: float) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    k, code = _reg(**reg)
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    h = L.LSTM(hidden, name="encoder", **k)(inp)
    mean, _, stats = _vae_heads(h, latent, k, code)
    z_in = keras.Input((latent,), batch_size=batch_size, name="z")
    x = L.RepeatVector(window)(z_in)
    x = L.LSTM(hidden, return_sequences=True, name="decoder_lstm", **k)(x)
    out = L.TimeDistributed(L.Dense(n_channels, **k), name="reconstruction")(x)
    decoder = keras.Model(z_in, out, name="decoder")
    return keras.Model(inp, [decoder(mean), stats], name="lstm_vae")
    # Upsample as a 2-D nearest-neighbour resize: RESIZE_NEAREST_NEIGHBOR runs
    # on the Edge TPU, where TRANSPOSE_CONV does not reliably.


def _lstm(window: int, n_channels: int, batch_size: int | None, latent: int = 8, **reg: float) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    k, code = _reg(**reg)
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    z = L.LSTM(latent, name="encoder", **k, **code)(inp)
    x = L.RepeatVector(window)(z)
    x = L.LSTM(latent, return_sequences=True, name="decoder", **k)(x)
    out = L.TimeDistributed(L.Dense(n_channels, **k), name="reconstruction")(x)
    return keras.Model(inp, out, name="lstm_ae")


def _dense(window: int, n_channels: int, batch_size: int | None, latent: int = 4, hidden: int = 32,
           **reg: float) -> Any:
    _, keras = tf_and_keras()
    L = keras.layers
    k, code = _reg(**reg)
    inp = keras.Input((window, n_channels), batch_size=batch_size, name="window")
    x = L.Flatten()(inp)
    x = L.Dense(hidden, activation="relu", **k)(x)
    z = L.Dense(latent, activation="relu", name="latent", **k, **code)(x)
    x = L.Dense(hidden, activation="relu", **k)(z)
    x = L.Dense(window * n_channels, **k)(x)
    out = L.Reshape((window, n_channels), name="reconstruction")(x)
    return keras.Model(inp, out, name="dense_ae")


_BUILDERS: dict[str, Callable[..., Any]] = {"conv": _conv, "lstm": _lstm, "dense": _dense,
                                            "conv-vae": _conv_vae, "lstm-vae": _lstm_vae}
MODEL_KINDS = tuple(_BUILDERS)
VAE_KINDS = ("conv-vae", "lstm-vae")
_DEFAULT_LATENT = {"conv": 4, "dense": 4, "lstm": 8, "conv-vae": 4, "lstm-vae": 8}


def is_vae(kind: str) -> bool:
    return kind in VAE_KINDS


def latent_size(kind: str, params: dict[str, Any] | None = None) -> int:
    return int((params or {}).get("latent") or _DEFAULT_LATENT[kind])


def build_model(kind: str, window: int, n_channels: int, batch_size: int | None = None, **params: Any) -> Any:
    """A fresh, uncompiled Keras autoencoder of the given kind."""
    from edge_runtime.errors import ConfigError

    if kind not in _BUILDERS:
        raise ConfigError(f"--model {kind!r} is unknown; use one of {', '.join(MODEL_KINDS)}")
    latent = latent_size(kind, params)
    if latent > window * n_channels:
        raise ConfigError(
            f"--latent {latent} is larger than the input ({window} steps x {n_channels} channels = "
            f"{window * n_channels} values); an autoencoder needs a narrower code, use at most {window * n_channels}"
        )
    return _BUILDERS[kind](window, n_channels, batch_size, **params)
