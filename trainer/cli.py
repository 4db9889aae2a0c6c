"""``edgewatch train``, ``export`` and ``evaluate``.

Import-light on purpose: ``edgewatch --help`` and ``edgewatch train --help``
must not import TensorFlow, so every heavy import is inside a command.
"""

from __future__ import annotations

from typing import Any, Callable

import click

__all__ = ["train", "export", "evaluate"]


def _columns(value: str | None, flag: str = "--columns") -> tuple[str, ...] | None:
    if value is None:
        return None
    cols = tuple(c.strip() for c in value.split(",") if c.strip())
    if not cols:
        raise click.BadParameter(f"{value!r} names no columns; give names like a,b,c", param_hint=flag)
    if len(set(cols)) != len(cols):
        twice = next(c for c in cols if cols.count(c) > 1)
        raise click.BadParameter(f"{value!r} names {twice!r} twice; give each column once", param_hint=flag)
    return cols


def _weights(value: str | None) -> tuple[float, ...] | None:
    if value is None:
        return None
    try:
        return tuple(float(v) for v in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of numbers", param_hint="--channel-weights") from None


def data_options(prefix: str = "") -> Callable[[Any], Any]:
    """The options that say how to read data files, shared by train/evaluate."""
    def deco(f: Any) -> Any:
        opts = [
            click.option(f"--{prefix}format", f"{prefix.replace('-', '_')}fmt", default="auto", show_default=True,
                         type=click.Choice(["auto", "csv", "cmapss"]), help="Data file format."),
            click.option(f"--{prefix}columns", default=None, help="Feature columns by name, comma-separated (default: all numeric)."),
            click.option(f"--{prefix}categorical", default=None,
                         help="CSV columns holding categories (e.g. proto,service), one-hot encoded with the "
                              "vocabulary stored in the bundle; left out of the default --columns."),
            click.option(f"--{prefix}time-column", default=None, help="CSV timestamp column (default: time/timestamp if present)."),
            click.option(f"--{prefix}units", default=None, help="C-MAPSS units, e.g. 1-80 or 1-10,15."),
            click.option(f"--{prefix}min-rul", type=click.IntRange(min=0), default=None,
                         help="C-MAPSS: keep rows whose remaining useful life is above N (healthy)."),
        ]
        for o in reversed(opts):
            f = o(f)
        return f
    return deco


@click.command()
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False))
@data_options()
@click.option("--labels", "label_column", default=None, help="Label column; only rows labelled 0 (normal) are trained on.")
@click.option("--model", default="conv", show_default=True,
              type=click.Choice(["conv", "lstm", "dense", "conv-vae", "lstm-vae"]),
              help="Autoencoder kind; the -vae kinds are variational (see --latent-score, --beta).")
@click.option("--window", default=30, show_default=True, type=click.IntRange(min=1),
              help="Window length in samples; 1 scores each record on its own (tabular records, --model dense).")
@click.option("--stride", default=1, show_default=True, type=click.IntRange(min=1), help="Hop between windows.")
@click.option("--epochs", default=80, show_default=True, type=click.IntRange(min=1))
@click.option("--patience", default=8, show_default=True, type=click.IntRange(min=1), help="Early-stopping patience (epochs).")
@click.option("--batch-size", default=64, show_default=True, type=click.IntRange(min=1))
@click.option("--seed", default=0, show_default=True, type=int, help="Seed for a reproducible run.")
@click.option("--score", "score_method", default="mse", show_default=True, type=click.Choice(["mse", "mae"]))
@click.option("--reduce", default="mean", show_default=True, type=click.Choice(["mean", "max"]), help="Reduce the error over time steps.")
@click.option("--channel-weights", default=None, help="Per-channel score weights, comma-separated, in column order.")
@click.option("--smooth", default=1, show_default=True, type=click.IntRange(min=1),
              help="Average the residual over this many time steps before scoring (rejects sensor noise).")
@click.option("--latent", default=None, type=click.IntRange(min=1), help="Bottleneck size (default: 4 conv/dense, 8 lstm).")
@click.option("--latent-score", default="none", show_default=True, type=click.Choice(["none", "kl", "mahalanobis"]),
              help="Variational models: add the KL term or the Mahalanobis distance of the code; the score becomes "
                   "z(reconstruction) + LAMBDA * z(latent), standardised on validation windows.")
@click.option("--latent-weight", "latent_weight", default=1.0, show_default=True, type=float, help="LAMBDA of the combined score.")
@click.option("--beta", default=1.0, show_default=True, type=float, help="Variational models: final KL weight.")
@click.option("--anneal", default="linear", show_default=True, type=click.Choice(["none", "linear", "cyclical"]),
              help="KL weight schedule from 0 to --beta.")
@click.option("--anneal-epochs", default=10, show_default=True, type=int, help="Linear annealing: epochs to reach --beta.")
@click.option("--cycles", default=4, show_default=True, type=int, help="Cyclical annealing: number of cycles.")
@click.option("--free-bits", default=0.0, show_default=True, type=float, help="KL floor per code dimension (nats); guards against posterior collapse.")
@click.option("--noise-std", default=0.0, show_default=True, type=float, help="Denoising: Gaussian input noise (scaled units).")
@click.option("--mask-prob", default=0.0, show_default=True, type=float, help="Denoising: probability of masking each input value.")
@click.option("--activity-l1", default=0.0, show_default=True, type=float, help="Sparse: L1 penalty on the code.")
@click.option("--weight-decay", default=0.0, show_default=True, type=float, help="L2 penalty on every kernel.")
@click.option("--contractive", default=0.0, show_default=True, type=float, help="Contractive: weight of ||d code / d input||^2.")
@click.option("--threshold-method", default="percentile:99.5", show_default=True,
              help="percentile:P | sigma:K | far:RATE on held-out normal windows.")
@click.option("--quantize", default="int8", show_default=True, type=click.Choice(["int8", "float16", "dynamic", "float32"]))
@click.option("--target", default="cpu", show_default=True, type=click.Choice(["cpu", "edgetpu", "gpu"]))
@click.option("--check", "check_paths", multiple=True, type=click.Path(dir_okay=False),
              help="Labelled data for the int8 parity gate's ROC-AUC check (read like DATA).")
@click.option("--check-labels", default=None, help="Label column of --check data (C-MAPSS: 'label').")
@click.option("--check-units", default=None, help="C-MAPSS units of --check data, e.g. 81-100.")
@click.option("--max-auc-drop", default=0.005, show_default=True, type=float)
@click.option("--min-agreement", default=0.99, show_default=True, type=float)
@click.option("--force", is_flag=True, help="Write the bundle even if the quantized model fails the parity gate.")
@click.option("--model-id", default=None, help="Model id in the manifest (default: the output file name).")
@click.option("--rate", "sample_rate", type=click.FloatRange(min=0, min_open=True), default=None, help="Sample rate in Hz, if the data has no time column.")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="Bundle file to write (.ewb).")
def train(data: tuple[str, ...], fmt: str, columns: str | None, categorical: str | None, time_column: str | None, units: str | None,
          min_rul: int | None, label_column: str | None, model: str, window: int, stride: int, epochs: int,
          patience: int, batch_size: int, seed: int, score_method: str, reduce: str, channel_weights: str | None,
          smooth: int, latent: int | None, latent_score: str, latent_weight: float, beta: float, anneal: str,
          anneal_epochs: int, cycles: int, free_bits: float, noise_std: float, mask_prob: float, activity_l1: float,
          weight_decay: float, contractive: float, threshold_method: str, quantize: str, target: str, check_paths: tuple[str, ...], check_labels: str | None,
          check_units: str | None, max_auc_drop: float, min_agreement: float, force: bool, model_id: str | None,
          sample_rate: float | None, out: str) -> None:
    """Train an autoencoder on healthy DATA, calibrate its threshold, export int8 TFLite and write a bundle.

    \b
    Example (C-MAPSS FD001, engines 1-80, healthy cycles only):
      edgewatch train train_FD001.txt --format cmapss --units 1-80 --min-rul 125 --out fd001.ewb
    """
    from edge_runtime.scoring import ScoreConfig
    from edge_runtime.thresholds import parse_method
    from trainer.api import DataSpec, train_bundle
    from trainer.export import Gate
    from trainer.training import TrainingOptions

    parse_method(threshold_method)  # fail before loading TensorFlow
    # Built before any data or TensorFlow is loaded, so bad values fail fast with one line (exit 2).
    training = TrainingOptions(noise_std=noise_std, mask_prob=mask_prob, activity_l1=activity_l1,
                               weight_decay=weight_decay, contractive=contractive, beta=beta,
                               anneal=anneal, anneal_epochs=anneal_epochs, cycles=cycles,  # type: ignore[arg-type]
                               free_bits=free_bits)
    if latent_score != "none" and not model.endswith("-vae"):
        raise click.BadParameter(f"{latent_score!r} needs a variational model (--model conv-vae or lstm-vae), "
                                 f"not {model!r}", param_hint="--latent-score")
    if window == 1 and model != "dense":
        raise click.BadParameter(f"1 (one record at a time) needs --model dense, not {model!r}; conv and lstm "
                                 "models need a window of at least 2", param_hint="--window")
    spec = DataSpec(data, fmt, _columns(columns), time_column, label_column, units, min_rul,
                    _columns(categorical, "--categorical"))
    check = None
    if check_paths:
        if check_labels is None:
            raise click.BadParameter("--check needs --check-labels COLUMN (C-MAPSS: label)", param_hint="--check-labels")
        check = DataSpec(check_paths, fmt, spec.columns, time_column, check_labels, check_units,
                         categorical=spec.categorical)
    score_config = ScoreConfig(score_method, reduce, _weights(channel_weights), smooth,  # type: ignore[arg-type]
                               latent=latent_score, latent_weight=latent_weight)  # type: ignore[arg-type]
    if smooth > window:
        raise click.BadParameter(f"--smooth {smooth} is longer than --window {window}; use at most the window length", param_hint="--smooth")
    train_bundle(spec, out, model=model, window=window, stride=stride, epochs=epochs, patience=patience,
                 batch_size=batch_size, seed=seed, score=score_config, threshold_method=threshold_method,
                 quantize=quantize, target=target, check=check, gate=Gate(max_auc_drop, min_agreement),
                 force=force, model_id=model_id, sample_rate_hz=sample_rate, log=click.echo,
                 model_params={"latent": latent} if latent else None, training=training)


@click.command()
@click.argument("bundle_path", metavar="BUNDLE", type=click.Path(dir_okay=False))
@click.option("--quantize", default="int8", show_default=True, type=click.Choice(["int8", "float16", "dynamic", "float32"]))
@click.option("--target", default="cpu", show_default=True, type=click.Choice(["cpu", "edgetpu", "gpu"]))
@click.option("--check", "check_paths", multiple=True, type=click.Path(dir_okay=False), help="Labelled data for the ROC-AUC part of the gate.")
@click.option("--check-labels", default=None, help="Label column of --check data.")
@click.option("--check-units", default=None, help="C-MAPSS units of --check data.")
@click.option("--check-format", default="auto", type=click.Choice(["auto", "csv", "cmapss"]))
@click.option("--max-auc-drop", default=0.005, show_default=True, type=float)
@click.option("--min-agreement", default=0.99, show_default=True, type=float)
@click.option("--force", is_flag=True, help="Accept a model that fails the parity gate.")
@click.option("--out", default=None, type=click.Path(dir_okay=False), help="Write here instead of replacing BUNDLE.")
def export(bundle_path: str, quantize: str, target: str, check_paths: tuple[str, ...], check_labels: str | None,
           check_units: str | None, check_format: str, max_auc_drop: float, min_agreement: float, force: bool,
           out: str | None) -> None:
    """(Re)export BUNDLE's Keras model to TFLite, gate it against float32, and make it the runtime model."""
    from edge_runtime.bundle import Bundle
    from edge_runtime.errors import BundleError
    from trainer.api import labelled_windows
    from trainer.export import Gate, export_bundle

    bundle = Bundle.load(bundle_path)
    if not bundle.has("keras_model.h5") or not bundle.has("reference_windows.npz"):
        raise BundleError(f"{bundle_path}: has no keras_model.h5/reference_windows.npz (a gateway-only bundle?); export from the bundle 'edgewatch train' wrote")
    labelled = None
    if check_paths:
        if check_labels is None:
            raise click.BadParameter("--check needs --check-labels COLUMN", param_hint="--check-labels")
        from edge_runtime.categorical import load_bundle_table
        from edge_runtime.preprocess import Standardizer

        table, unseen = load_bundle_table(bundle, check_paths, format=check_format, label_column=check_labels,
                                          units=check_units)
        for u in unseen:
            click.echo(f"warning: --check data: {u.message()}", err=True)
        labelled = labelled_windows(table, Standardizer.from_manifest(bundle.manifest["scaler"]), bundle.window)
    export_bundle(bundle, quantize=quantize, target=target, labelled=labelled,
                  gate=Gate(max_auc_drop, min_agreement), force=force, log=click.echo)
    bundle.save(out or bundle_path)
    click.echo(f"wrote {out or bundle_path}: runtime model {bundle.runtime_model}, threshold {bundle.threshold:.6g}")


@click.command()
@click.option("--bundle", "bundle_path", required=True, type=click.Path(dir_okay=False))
@click.argument("data", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--labels", "label_column", required=True, help="Label column: 1 anomalous, 0 normal, empty unknown (C-MAPSS: label).")
@click.option("--format", "fmt", default="auto", show_default=True, type=click.Choice(["auto", "csv", "cmapss"]))
@click.option("--units", default=None, help="C-MAPSS units to evaluate on, e.g. 81-100.")
@click.option("--time-column", default=None)
@click.option("--report", "report_dir", required=True, type=click.Path(file_okay=False), help="Directory for report.md and plots.")
@click.option("--alarm-k", default=3, show_default=True, type=click.IntRange(min=1), help="Alarm when k of the last n windows exceed the threshold.")
@click.option("--alarm-n", default=3, show_default=True, type=click.IntRange(min=1))
@click.option("--no-baselines", is_flag=True, help="Skip the IsolationForest, one-class SVM, LOF and PCA baselines.")
@click.option("--delegate", default="auto", show_default=True)
def evaluate(bundle_path: str, data: tuple[str, ...], label_column: str, fmt: str, units: str | None,
             time_column: str | None, report_dir: str, alarm_k: int, alarm_n: int, no_baselines: bool, delegate: str) -> None:
    """Evaluate a bundle on labelled DATA: metrics, plots and a report, with baselines side by side."""
    from trainer.evaluate import evaluate_bundle

    if alarm_k > alarm_n:
        raise click.BadParameter(f"--alarm-k {alarm_k} is larger than --alarm-n {alarm_n}", param_hint="--alarm-k")
    evaluate_bundle(bundle_path, data, label_column=label_column, fmt=fmt, units=units, time_column=time_column,
                    report_dir=report_dir, alarm_k=alarm_k, alarm_n=alarm_n, baselines=not no_baselines,
                    delegate=delegate, log=click.echo)
