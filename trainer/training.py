"""How an autoencoder is trained: denoising, penalties and the variational objective.

One custom training step serves every model kind (a ``tf_keras.Model``
subclass wrapping the model :func:`trainer.models.build_model` built):

* **denoising**: the input is corrupted (Gaussian noise of ``noise_std`` in
  scaled units, and/or each value zeroed -- the channel mean after scaling --
  with probability ``mask_prob``) and the clean window is the target;
* **sparse**: ``activity_l1`` is an L1 penalty on the code; **weight decay**
  is L2 on every kernel (both are layer regularisers, see :mod:`trainer.models`);
* **contractive**: ``contractive`` weighs the squared Frobenius norm of the
  Jacobian of the code with respect to the input, averaged over the batch;
* **variational** (``conv-vae``, ``lstm-vae``): the decoder reconstructs a
  code sampled with the reparameterisation trick ``z = mean + exp(log_var/2) * eps``,
  and the loss is ``mse + beta * KL / (window * channels)`` -- the KL per input
  value, so beta means the same for any window size. ``beta`` is annealed from
  0 linearly over ``anneal_epochs`` or cyclically (``cycles`` ramps, each rising
  over the first half of its cycle, Fu et al. 2019); ``free_bits`` is the
  floor, in nats, under each code dimension's batch-mean KL, so the optimiser
  gains nothing from pushing a dimension into collapse (Kingma et al. 2016).

The validation loss uses the deterministic mean path and the final beta, so
early stopping compares epochs on one scale while beta is still rising.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Literal

from edge_runtime.errors import ConfigError
from trainer._tf import tf_and_keras

__all__ = ["TrainingOptions", "ANNEALING", "beta_at", "make_trainer"]

ANNEALING = ("none", "linear", "cyclical")


@dataclass(frozen=True)
class TrainingOptions:
    """Training-time options; stored in the manifest under ``model.training``."""

    noise_std: float = 0.0
    mask_prob: float = 0.0
    activity_l1: float = 0.0
    weight_decay: float = 0.0
    contractive: float = 0.0
    beta: float = 1.0
    anneal: Literal["none", "linear", "cyclical"] = "linear"
    anneal_epochs: int = 10
    cycles: int = 4
    free_bits: float = 0.0

    def __post_init__(self) -> None:
        for name in ("noise_std", "activity_l1", "weight_decay", "contractive", "beta", "free_bits"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                flag = "--" + name.replace("_", "-")
                raise ConfigError(f"{flag} {value!r} must be a finite number >= 0")
        if not 0 <= self.mask_prob < 1:
            raise ConfigError(f"--mask-prob {self.mask_prob!r} must be in [0, 1), e.g. 0.1")
        if self.anneal not in ANNEALING:
            raise ConfigError(f"--anneal {self.anneal!r} is not one of {', '.join(ANNEALING)}")
        if self.anneal_epochs < 1 or self.cycles < 1:
            raise ConfigError(f"--anneal-epochs {self.anneal_epochs!r} and --cycles {self.cycles!r} must be >= 1")

    def to_manifest(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def layer_regularisation(self) -> dict[str, float]:
        return {k: v for k, v in (("activity_l1", self.activity_l1), ("weight_decay", self.weight_decay)) if v}


def beta_at(options: TrainingOptions, progress: float, epoch: float) -> float:
    """KL weight at a point of training: ``progress`` in [0, 1] of all steps, ``epoch`` fractional."""
    if options.anneal == "none":
        return options.beta
    if options.anneal == "linear":
        return options.beta * min(1.0, epoch / options.anneal_epochs)
    phase = (progress * options.cycles) % 1.0
    return options.beta * min(1.0, 2.0 * phase)


def _code_layer(net: Any, vae: bool) -> Any:
    for name in (("z_mean",) if vae else ("latent", "encoder")):
        try:
            return net.get_layer(name)
        except ValueError:
            continue
    raise ConfigError(f"--contractive needs a model with a code layer; {net.name} has none")


def make_trainer(net: Any, options: TrainingOptions, vae: bool, n_values: int) -> tuple[Any, list[Any]]:
    """(a compilable keras Model that trains ``net``, callbacks it needs)."""
    tf, keras = tf_and_keras()
    encoder = keras.Model(net.input, _code_layer(net, vae).output) if options.contractive else None
    decoder = net.get_layer("decoder") if vae else None

    class _Trainer(keras.Model):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.net = net
            self.beta = tf.Variable(beta_at(options, 0.0, 0.0), trainable=False, dtype=tf.float32, name="beta")

        def call(self, x: Any, training: bool = False) -> Any:
            return self.net(x, training=training)

        def _corrupt(self, x: Any) -> Any:
            if options.noise_std:
                x = x + tf.random.normal(tf.shape(x), stddev=options.noise_std)
            if options.mask_prob:
                x = x * tf.cast(tf.random.uniform(tf.shape(x)) >= options.mask_prob, x.dtype)
            return x

        def _terms(self, x: Any, y: Any, training: bool) -> tuple[Any, Any, Any]:
            xin = self._corrupt(x) if training else x
            kl = tf.constant(0.0)
            if vae:
                recon, stats = self.net(xin, training=training)
                mean, log_var = tf.split(stats, 2, axis=-1)
                if training:
                    z = mean + tf.exp(0.5 * log_var) * tf.random.normal(tf.shape(mean))
                    recon = decoder(z, training=True)
                per_dim = tf.reduce_mean(0.5 * (tf.exp(log_var) + tf.square(mean) - 1.0 - log_var), axis=0)
                kl = tf.reduce_sum(tf.maximum(per_dim, options.free_bits))
            else:
                recon = self.net(xin, training=training)
            rec = tf.reduce_mean(tf.square(y - recon))
            penalty = tf.add_n(self.net.losses) if self.net.losses else tf.constant(0.0)
            if encoder is not None and training:
                with tf.GradientTape() as inner:
                    inner.watch(xin)
                    code = encoder(xin, training=True)
                jac = inner.batch_jacobian(code, xin, experimental_use_pfor=False)
                penalty += options.contractive * tf.reduce_mean(tf.reduce_sum(tf.square(jac), axis=[1, 2, 3]))
            return rec, kl, penalty

        def train_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            with tf.GradientTape() as tape:
                rec, kl, penalty = self._terms(x, y, True)
                loss = rec + self.beta * kl / n_values + penalty
            grads = tape.gradient(loss, self.net.trainable_variables)
            self.optimizer.apply_gradients(zip(grads, self.net.trainable_variables))
            # KL and beta are only shown for VAEs: for the others they are always 0.
            return {"loss": loss, "reconstruction": rec, "kl": kl, "beta": self.beta} if vae else {"loss": loss}

        def test_step(self, data: Any) -> dict[str, Any]:
            x, y = data
            rec, kl, _ = self._terms(x, y, False)
            loss = rec + options.beta * kl / n_values
            return {"loss": loss, "reconstruction": rec, "kl": kl} if vae else {"loss": loss}

    trainer = _Trainer()

    class _Anneal(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.epoch = epoch

        def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
            steps = max(int(self.params.get("steps") or 1), 1)
            epochs = max(int(self.params.get("epochs") or 1), 1)
            at = self.epoch + batch / steps
            trainer.beta.assign(beta_at(options, at / epochs, at))

    return trainer, ([_Anneal()] if vae else [])

